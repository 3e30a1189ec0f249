"""Command line: `python -m vs2mini {features,zeroshot,train-sae,reproduce,pretrain-toy} [--profile toy]`;
`python -m vs2mini reproduce --table NAME` runs any other table of the paper (`--help` lists them).

Every command prints a readable table and can write JSON (`--json out.json`). Runs under the offline `toy` profile
(the default) say once that their numbers come from a toy model, not the paper's setting.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from . import __version__
from .clip.models import TEMPLATES
from .config import DEFAULT_PROFILE, PROFILE_ENV, PROFILES
from .data.registry import DATASETS
from .disk import check_writable
from .method.pass_loss import PASS_VARIANTS
from .method.retrieval import POSITIVE_RULES
from .provenance import stamp
from .tables.run import RETRIEVAL_FEATURES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=sorted(PROFILES),
                   help=f"run profile (default: ${PROFILE_ENV} or {DEFAULT_PROFILE})")
    p.add_argument("--dataset", help=f"{' | '.join(DATASETS)} (default: the profile's first); reproduce takes "
                   "several, comma-separated (default: the profile's datasets)")
    p.add_argument("--model", help="open_clip model name, e.g. ViT-B-16 (default: the profile's)")
    p.add_argument("--pretrained", default="", help="open_clip pretrained tag, e.g. openai (default: the profile's)")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--k", type=int, help="SAE active latents (default: 64 for ViT-B/32, 256 for ViT-B/16)")
    p.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, help="seed of every SAE the run trains (default: the profile's, 0)")
    p.add_argument("--bf16", choices=["none", "sae", "features", "all"], help="bf16 autocast for the SAE's encoder "
                   "GEMM and/or CLIP feature extraction (default: the profile's; measured speed and accuracy: "
                   "benchmarks/RESULTS.md)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: $OMP_NUM_THREADS if set, else the "
                   "profile's rule: 1 for the small offline profile, one per core otherwise)")


def _set_threads(args) -> None:
    """The thread rule for CPU runs: --threads wins, then $OMP_NUM_THREADS (torch reads it itself), then the
    profile's `cpu_threads` (1 for the small offline profile, whose many small ops only contend on a shared
    machine; measured in benchmarks/RESULTS.md). GPU runs keep torch's default."""
    import os

    import torch
    if not hasattr(args, "threads"):          # commands without the common options (pretrain-toy)
        return
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
        return
    cpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cpu")
    threads = _profile(args).cpu_threads
    if cpu and threads and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(threads)


def _profile(args):
    from .config import get_profile
    bf16 = getattr(args, "bf16", None)
    amp = {} if bf16 is None else {"bf16": bf16 in ("sae", "all"), "feature_amp": bf16 in ("features", "all")}
    return get_profile(args.profile, k=args.k, seed=getattr(args, "seed", None), **amp)


def _setup(args):
    from .pipeline import load_setup
    from .data.registry import check_datasets
    p = _profile(args)
    check_datasets(_datasets(args, p), p.data.n_train, p.data.n_test)            # broken files: before any encoding
    return load_setup(p, args.dataset, model=args.model, pretrained=args.pretrained or "",
                      device=args.device, templates=getattr(args, "templates", None), progress=not args.quiet)


def _warning(setup) -> dict:
    """{"warning": ...} for results that are not real (toy profile), else {}."""
    return {} if setup.real else {"warning": setup.banner}


def _write_json(path: Path | None, obj, quiet: bool = False) -> None:
    """Write atomically through the one writer (vs2mini.disk): unique temporary name, one-line disk errors."""
    if path:
        from .disk import write_json
        write_json(path, obj)
        if not quiet:
            print(f"wrote {path}")


def _datasets(args, profile) -> list[str]:
    """--dataset a,b (comma-separated) or the profile's datasets; every name checked."""
    from .data.registry import check_name
    names = [d.strip() for d in args.dataset.split(",") if d.strip()] if args.dataset else list(profile.datasets)
    names = [check_name(d) for d in names]
    if not names:
        raise ValueError("--dataset is empty; name at least one dataset")
    return names


def _validate(args) -> None:
    """Check every argument before any model is loaded, feature extracted or SAE trained."""
    check_writable(args.json, "--json")
    check_writable(getattr(args, "out", None), "--out")
    if not hasattr(args, "profile"):              # pretrain-toy: no profile, dataset or SAE arguments
        return
    profile = _profile(args)
    names = _datasets(args, profile)
    if args.command != "reproduce" and len(names) > 1:
        raise ValueError(f"--dataset: {args.command} takes one dataset, got {names}")
    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be a positive integer, got {args.k}")
    q = getattr(args, "gate_q", None)
    if q is not None and not (math.isfinite(q) and 0.0 < q <= 1.0):
        raise ValueError(f"--gate-q must be in (0, 1], got {q}")
    if args.device:
        from .clip.models import check_device
        check_device(args.device)
    if args.command == "reproduce" and args.table not in (None, "main"):
        from .tables.flags import table_options
        table_options(args, profile)          # a flag the table would ignore: refused before any work
    if getattr(args, "retrieval", None) == "dinov2":
        _check_dinov2()


def _check_dinov2() -> None:
    """--retrieval dinov2 needs torch.hub's copy of the repository or a network that answers."""
    import torch

    from .data.download import reachable
    if not (Path(torch.hub.get_dir()) / "facebookresearch_dinov2_main").is_dir() and not reachable(
            "https://github.com"):
        raise ValueError("--retrieval dinov2: DINOv2 is not in the torch.hub cache "
                         f"({torch.hub.get_dir()}) and github.com does not answer; use --retrieval clip offline")


def cmd_features(args) -> dict:
    s = _setup(args)
    out = {"dataset": s.dataset, "model": s.clip.tag, "real": s.real, **_warning(s),
           "train": {"n": len(s.train.labels), "cls": list(s.train.cls.shape), "emb": list(s.train.emb.shape)},
           "test": {"n": len(s.test.labels), "cls": list(s.test.cls.shape), "emb": list(s.test.emb.shape)}}
    print(s.banner)
    for split in ("train", "test"):
        o = out[split]
        print(f"{split:<6} {o['n']:>7} images   CLS {tuple(o['cls'])}   embedding {tuple(o['emb'])}")
    return out


def cmd_zeroshot(args) -> dict:
    from .method import metrics
    s = _setup(args)
    logits = s.logits(s.test.cls)
    acc = metrics.top1(logits, s.test.labels)
    per_class = metrics.per_class_accuracy(logits, s.test.labels, len(s.classnames))
    print(s.banner)
    print(f"CLIP zero-shot on {s.dataset} ({len(s.test.labels)} images, {s.clip.tag}, templates "
          f"{args.templates or s.profile.data.templates}): top-1 {acc:.2f}%")
    order = per_class.nan_to_num(-1).argsort(descending=True).tolist()
    shown = order if len(order) <= 20 else order[:10] + order[-10:]
    print(f"\n{'class':<28} {'top-1':>7}" + ("   (10 best, 10 worst)" if len(order) > 20 else ""))
    for i in shown:
        print(f"{s.classnames[i]:<28} {per_class[i].item():7.1f}")
    confused = metrics.most_confused(logits, s.test.labels, s.classnames, top=5)
    if confused:
        print("\nmost confused (true -> predicted: count): " + "; ".join(f"{a} -> {b}: {n}" for a, b, n in confused))
    return {"dataset": s.dataset, "model": s.clip.tag, "real": s.real, "top1": acc,
            "per_class": dict(zip(s.classnames, per_class.tolist())), "most_confused": confused, **_warning(s)}


def default_sae_path(profile: str, dataset: str, model: str, k: int, width: int) -> Path:
    """runs/sae_<profile>_<dataset>_<model>_k<k>_n<width>.pt: SAEs of different settings never share a file."""
    safe = lambda v: "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in str(v))  # noqa: E731
    return Path("runs") / f"sae_{safe(profile)}_{safe(dataset)}_{safe(model)}_k{k}_n{width}.pt"


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it, or --out to choose another file")


def cmd_train_sae(args) -> dict:
    from .disk import save_or_rescue
    from .method.sae_file import save_sae
    from .tables.run import paper_fvu, training_report
    if args.out:
        _refuse_overwrite(args.out, args.force)        # before any work
    s = _setup(args)
    width = s.profile.sae.expansion * s.train.cls.shape[1]
    out = args.out or default_sae_path(s.profile.name, s.dataset, s.clip.tag, s.profile.k_for(s.clip.name), width)
    _refuse_overwrite(out, args.force)                  # before training
    sae, hist = s.train_sae(progress=not args.quiet)
    rep = training_report(sae, hist, s.test.cls.to(s.clip.device), paper_fvu(s.dataset, s.clip.name, s.clip.pretrained))
    meta = dict(history=hist, real=s.real, profile=s.profile.name, dataset=s.dataset, model=s.clip.tag, k=sae.k,
                width=sae.n_latents, steps=int(rep["steps"]), final_fvu=rep["train_fvu"],
                heldout_fvu=rep["heldout_fvu"], **_warning(s))
    # claimed at write time: a file that appeared during training (a concurrent run) is never replaced silently
    save_or_rescue(lambda path, exclusive: save_sae(sae, path, exclusive=exclusive, **meta), out, args.force,
                   "trained SAE")
    held = f"{rep['heldout_fvu']:.4f}" if rep["heldout_fvu"] is not None else "-"
    paper = f", paper (Table 6) {rep['paper_fvu']:.4f}" if rep["paper_fvu"] is not None else ""
    print(s.banner)
    print(f"SAE d={sae.d_in} n={sae.n_latents} k={sae.k}: {rep['steps']} steps ({rep['epochs']} epochs, selected "
          f"epoch {rep['selected_epoch']}), FVU train {rep['train_fvu']:.4f} / held-out {held} / test "
          f"{rep['test_fvu']:.4f}{paper}, dead {100 * hist['dead_frac'][-1]:.1f}%  -> {out}")
    return {"path": str(out), "history": hist, "summary": rep, "real": s.real, **_warning(s)}


def cmd_reproduce(args):
    from .tables import main as reproduce
    profile = _profile(args)
    datasets = _datasets(args, profile)
    from .data.registry import check_datasets
    from .tables.flags import run_datasets, run_tables
    check_datasets(run_datasets(args, profile, datasets), profile.data.n_train, profile.data.n_test)
    if args.table and args.table != "main":
        return run_tables(args, profile, datasets,
                          lambda path, obj, quiet=False: _write_json(path, stamp(obj, profile), quiet))
    # the main table's own flags set the profile's steering, gate and PASS settings (None: the profile's)
    main = profile.set(retrieval=args.retrieval, positive_rule=args.positives, q=args.gate_q,
                       variant=args.pass_variant)
    reproduce.check_run_args(main)                                   # before any model, feature or training
    results = []
    for ds in datasets:
        try:
            r = reproduce.run_reproduce(main, ds, model=args.model, pretrained=args.pretrained or "",
                                        device=args.device, progress=not args.quiet)
        except Exception:
            if results and args.json:
                kept = ", ".join(r["dataset"] for r in results)
                print(f"{ds} failed; the finished results for {kept} are in {args.json}", file=sys.stderr)
            raise
        results.append(json.loads(r.to_json()))
        # each dataset's result is on disk as soon as it is done (before it is printed: a closed pipe or a later
        # failure loses nothing)
        _write_json(args.json, stamp(results if len(datasets) > 1 else results[0], profile), quiet=True)
        print(r.table() + "\n")
    return results if len(results) > 1 else results[0]


def _table_names() -> list[str]:
    from .tables.registry import TABLES
    return ["main", *TABLES, "all"]


def _table_help() -> str:
    from .tables.registry import TABLES
    lines = ["main: Table 1a / 11 (the default, without --table)"]
    lines += [f"{t.name}: {t.source}: {t.help}" for t in TABLES.values()]
    lines.append("all: every table above except main, one after the other")
    return "tables:\n  " + "\n  ".join(lines)


def cmd_pretrain_toy(args) -> dict:
    """Rebuild the toy CLIP's weights (deterministic: the same code and torch give the same file) into a user path
    (default runs/toy_clip/), never over an existing file without --force."""
    from .clip.pretrain import PretrainConfig, pretrain_toy_clip, zero_shot_accuracy
    from .clip.toyclip import DEFAULT_OUT, TOY_WEIGHTS_ENV, WEIGHTS_DIR, build_model, save_toy_weights
    from .disk import check_new, save_or_rescue
    out = args.out or DEFAULT_OUT
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if out.suffix != ".safetensors":
        raise ValueError(f"--out {out}: the weights file must end in .safetensors (its checksum record is written "
                         f"beside it as {out.with_suffix('.json').name})")
    if out.resolve().parent == WEIGHTS_DIR.resolve() and not args.force:
        raise ValueError(f"--out {out} is inside the installed package ({WEIGHTS_DIR}); write elsewhere and use it "
                         f"with ${TOY_WEIGHTS_ENV}, or pass --force to replace the shipped weights (then update "
                         "TOY_WEIGHTS_SHA256 in vs2mini/clip/toyclip.py)")
    check_new(out, args.force)                                  # before the work; the claim at write time guards
    config = PretrainConfig() if args.steps is None else PretrainConfig(steps=args.steps)
    model, hist = pretrain_toy_clip(config, progress=not args.quiet)
    acc = zero_shot_accuracy(model, build_model()[1], "base", "test")
    held = hist.get("heldout") or [(None, None)]
    extra = {"zero_shot_test_top1": round(acc, 2), "steps_run": hist["steps"],
             "heldout_loss": held[-1][1] and round(held[-1][1], 4)}
    record = {}
    save_or_rescue(lambda path, exclusive: record.update(save_toy_weights(model, hist["config"], path, extra,
                                                                          exclusive=exclusive)),
                   out, args.force, "pretrained toy CLIP")
    print(f"toy CLIP pretrained: {hist['seconds']:.0f} s wall, {hist['cpu_seconds']:.0f} s CPU, {hist['steps']} of at "
          f"most {config.steps} steps, held-out loss {held[-1][1]}; zero-shot top-1 on the toy test split {acc:.2f}% "
          f"-> {out} (sha256 {record['sha256'][:12]}); use it with {TOY_WEIGHTS_ENV}={out}")
    return {**record, **{k: hist[k] for k in ("seconds", "cpu_seconds", "loss", "heldout")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vs2mini", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"vs2mini {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features", help="extract and cache CLS tokens and image embeddings")
    _common(p)
    p = sub.add_parser("zeroshot", help="CLIP zero-shot top-1 and per-class accuracy")
    _common(p)
    p.add_argument("--templates", choices=sorted(TEMPLATES), help="prompt templates (default: the profile's)")
    p = sub.add_parser("train-sae", help="train the profile's top-k SAE on train CLS tokens")
    _common(p)
    p.add_argument("--out", type=Path,
                   help="where to save the SAE (default runs/sae_<profile>_<dataset>_<model>_k<k>_n<width>.pt)")
    p.add_argument("--force", action="store_true", help="overwrite an existing SAE file")
    p = sub.add_parser("reproduce", help="the paper's tables: by default Table 1a/11 (ZS, SAE baselines, VS2, "
                       "gate, VS2++, PASS); --table NAME for any other", epilog=_table_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--table", choices=_table_names(), help="run another table of the paper (list below)")
    p.add_argument("--retrieval", choices=RETRIEVAL_FEATURES,
                   help=f"VS2++ retrieval features (default: {RETRIEVAL_FEATURES[0]})")
    p.add_argument("--positives", choices=POSITIVE_RULES,
                   help="VS2++ S+: same label as the query (eq. 4, the default) or the neighbours' majority label "
                        "(sec. 4.2)")
    p.add_argument("--gate-q", type=float, help="FVU gate quantile (default 0.95; --table ood-gate: only this q "
                   "instead of Table 3's four)")
    p.add_argument("--pass-variant", choices=PASS_VARIANTS,
                   help="PASS penalty: eq7, the paper's eq. 7 (default), or ratio, the scale-free within-class "
                        "fraction of code variance (see vs2mini/method/pass_loss.py)")
    p = sub.add_parser("pretrain-toy", help="rebuild the toy CLIP's weights (about 2 minutes on a CPU)")
    p.add_argument("--out", type=Path, help="weights file (default: runs/toy_clip/vs2mini-toyclip.safetensors; "
                   "use it with $VS2MINI_TOY_WEIGHTS)")
    p.add_argument("--force", action="store_true", help="overwrite an existing weights file")
    p.add_argument("--steps", type=int, help="optimiser steps (default: the shipped model's)")
    p.add_argument("--json", type=Path, help="also write the record and loss curve as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    run = {"features": cmd_features, "zeroshot": cmd_zeroshot, "train-sae": cmd_train_sae,
           "reproduce": cmd_reproduce, "pretrain-toy": cmd_pretrain_toy}[args.command]
    try:
        _validate(args)
        _set_threads(args)
        out = run(args)
        _write_json(args.json, stamp(out, _profile(args) if hasattr(args, "profile") else None))
        sys.stdout.flush()                             # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:                            # `... | head -3`: the reader left; exit quietly like cat
        from .disk import silence_closed_stdout
        return silence_closed_stdout()
    except KeyboardInterrupt:                          # Ctrl-C: no traceback; what was finished is on disk
        kept = f"; results finished so far are in {args.json}" if args.json and args.json.exists() else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:   # clear message, no traceback for user errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
