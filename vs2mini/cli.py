"""Command line: `python -m vs2mini {features,zeroshot,train-sae,reproduce,pretrain-toy} [--profile toy]`.

Every command prints a readable table and can write JSON (`--json out.json`). Runs under the offline `toy` profile
(the default; `smoke` is its old name) say once that their numbers come from a toy model, not the paper's setting.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .profiles import ALIASES, DEFAULT_PROFILE, PROFILE_ENV, PROFILES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=sorted(PROFILES) + sorted(ALIASES),
                   help=f"run profile (default: ${PROFILE_ENV} or {DEFAULT_PROFILE}; smoke = toy)")
    p.add_argument("--dataset", help="cifar100 | cub200 | tinyimagenet | toy | toy-shifted "
                                     "(default: the profile's first)")
    p.add_argument("--model", help="open_clip model name, e.g. ViT-B-16 (default: the profile's)")
    p.add_argument("--pretrained", default="", help="open_clip pretrained tag, e.g. openai (default: the profile's)")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--k", type=int, help="SAE active latents (default: 64 for ViT-B/32, 256 for ViT-B/16)")
    p.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _profile(args):
    from .profiles import get_profile
    return get_profile(args.profile, k=args.k)


def _setup(args):
    from .pipeline import load_setup
    return load_setup(_profile(args), args.dataset, model=args.model, pretrained=args.pretrained or "",
                      device=args.device, templates=getattr(args, "templates", None), progress=not args.quiet)


def _warning(setup) -> dict:
    """{"warning": ...} for results that are not real (toy profile), else {}."""
    return {} if setup.real else {"warning": setup.banner}


def _write_json(path: Path | None, obj) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(obj if isinstance(obj, str) else json.dumps(obj, indent=2))
        print(f"wrote {path}")


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
    from . import metrics
    s = _setup(args)
    logits = s.logits(s.test.cls)
    acc = metrics.top1(logits, s.test.labels)
    per_class = metrics.per_class_accuracy(logits, s.test.labels, len(s.classnames))
    print(s.banner)
    print(f"CLIP zero-shot on {s.dataset} ({len(s.test.labels)} images, {s.clip.tag}, templates "
          f"{args.templates or s.profile.templates}): top-1 {acc:.2f}%")
    order = per_class.nan_to_num(-1).argsort(descending=True).tolist()
    shown = order if len(order) <= 20 else order[:10] + order[-10:]
    print(f"\n{'class':<28} {'top-1':>7}" + ("   (10 best, 10 worst)" if len(order) > 20 else ""))
    for i in shown:
        print(f"{s.classnames[i]:<28} {per_class[i].item():7.1f}")
    confused = metrics.most_confused(logits, s.test.labels, s.classnames, top=5)
    if confused:
        print("\nmost confused (true -> predicted: count): " + "; ".join(f"{a} -> {b}: {n}" for a, b, n in confused))
    if not s.real:
        print(f"\n{s.banner}")
    return {"dataset": s.dataset, "model": s.clip.tag, "real": s.real, "top1": acc,
            "per_class": dict(zip(s.classnames, per_class.tolist())), "most_confused": confused, **_warning(s)}


def cmd_train_sae(args) -> dict:
    from .reproduce import paper_fvu, training_report
    s = _setup(args)
    sae, hist = s.train_sae(progress=not args.quiet)
    out = args.out or Path("runs") / f"sae_{s.dataset}_{s.clip.name}.pt"
    sae.save(out, history=hist, real=s.real, dataset=s.dataset, model=s.clip.tag, **_warning(s))
    rep = training_report(sae, hist, s.test.cls.to(s.clip.device), paper_fvu(s.dataset, s.clip.name, s.clip.pretrained))
    held = f"{rep['heldout_fvu']:.4f}" if rep["heldout_fvu"] is not None else "-"
    paper = f", paper (Table 6) {rep['paper_fvu']:.4f}" if rep["paper_fvu"] is not None else ""
    print(s.banner)
    print(f"SAE d={sae.d_in} n={sae.n_latents} k={sae.k}: {rep['steps']} steps ({rep['epochs']} epochs, selected "
          f"epoch {rep['selected_epoch']}), FVU train {rep['train_fvu']:.4f} / held-out {held} / test "
          f"{rep['test_fvu']:.4f}{paper}, dead {100 * hist['dead_frac'][-1]:.1f}%  -> {out}")
    if not s.real:
        print(s.banner)
    return {"path": str(out), "history": hist, "summary": rep, "real": s.real, **_warning(s)}


def cmd_reproduce(args):
    from .reproduce import run_reproduce
    profile = _profile(args)
    datasets = [args.dataset] if args.dataset else list(profile.datasets)
    results = []
    for ds in datasets:      # load_setup rejects an unknown dataset before it loads a model
        r = run_reproduce(profile, ds, model=args.model, pretrained=args.pretrained or "", device=args.device,
                          retrieval_features=args.retrieval, positive_rule=args.positives, gate_q=args.gate_q,
                          pass_variant=args.pass_variant, progress=not args.quiet)
        print(r.table() + "\n")
        results.append(json.loads(r.to_json()))
    return results if len(results) > 1 else results[0]


def cmd_pretrain_toy(args) -> dict:
    """Rebuild the toy CLIP's weights (deterministic: the same code and torch give the same file)."""
    from .pretrain import PretrainConfig, WEIGHTS_FILE, build_model, pretrain_toy_clip, save_toy_weights, \
        zero_shot_accuracy
    out = args.out or WEIGHTS_FILE
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if out.suffix != ".safetensors":
        raise ValueError(f"--out {out}: the weights file must end in .safetensors (its checksum record is written "
                         f"beside it as {out.with_suffix('.json').name})")
    config = PretrainConfig() if args.steps is None else PretrainConfig(steps=args.steps)
    model, hist = pretrain_toy_clip(config, progress=not args.quiet)
    acc = zero_shot_accuracy(model, build_model()[1], "base", "test")
    record = save_toy_weights(model, hist["config"], out, extra={"zero_shot_test_top1": round(acc, 2)})
    print(f"toy CLIP pretrained in {hist['seconds']:.0f} s ({config.steps} steps, final loss {hist['loss'][-1]:.3f}); "
          f"zero-shot top-1 on the toy test split {acc:.2f}%  -> {out} (sha256 {record['sha256'][:12]})")
    return {**record, "seconds": hist["seconds"], "loss": hist["loss"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vs2mini", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features", help="extract and cache CLS tokens and image embeddings")
    _common(p)
    p = sub.add_parser("zeroshot", help="CLIP zero-shot top-1 and per-class accuracy")
    _common(p)
    p.add_argument("--templates", choices=["single", "cifar18"], help="prompt templates (default: the profile's)")
    p = sub.add_parser("train-sae", help="train the profile's top-k SAE on train CLS tokens")
    _common(p)
    p.add_argument("--out", type=Path, help="where to save the SAE (default runs/sae_<dataset>_<model>.pt)")
    p = sub.add_parser("reproduce", help="the paper's table: ZS, SAE baselines, VS2, gate, VS2++, PASS")
    _common(p)
    p.add_argument("--retrieval", choices=["clip", "dinov2"], default="clip", help="VS2++ retrieval features")
    p.add_argument("--positives", choices=["query", "majority"], default="query",
                   help="VS2++ S+: same label as the query (eq. 4) or the neighbours' majority label (sec. 4.2)")
    p.add_argument("--gate-q", type=float, default=0.95, help="FVU gate quantile")
    p.add_argument("--pass-variant", choices=["ratio", "eq7"],
                   help="PASS penalty: ratio (default) or eq7, the paper's eq. 7 literally (see vs2mini/prototype.py)")
    p = sub.add_parser("pretrain-toy", help="rebuild the toy CLIP's weights (about 2 minutes on a CPU)")
    p.add_argument("--out", type=Path, help="weights file (default: the one shipped in the package)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: the shipped model's)")
    p.add_argument("--json", type=Path, help="also write the record and loss curve as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    run = {"features": cmd_features, "zeroshot": cmd_zeroshot, "train-sae": cmd_train_sae,
           "reproduce": cmd_reproduce, "pretrain-toy": cmd_pretrain_toy}[args.command]
    try:
        out = run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:   # clear message, no traceback for user errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    _write_json(args.json, out)
    return 0
