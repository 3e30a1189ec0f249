"""Tables under distribution shift: Table 3 (§4.3), the generalized SAE and the FVU gate with its coverage; and
`reproduce --table shift`, the main table's rows on the toy world at lower resolutions (below)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import torch

from .. import paper
from ..config import Profile, get_profile
from ..data.toyworld import MAIN_RESOLUTION, RESOLUTIONS as SHIFTED, SIZE, resolution_dataset
from ..method import metrics, steer
from ..pipeline import Setup
from .result import SOURCES, Matrix, TableResult, TableRow, _result
from .run import Run, _accuracy, general_gate_data


def ood_gate_datasets(profile: Profile) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(datasets whose train splits train the generalized SAE, those whose train FVU sets tau, evaluated datasets).
    Real profiles: the paper's (the three main train splits; CIFAR-100 + Tiny-ImageNet for tau; all nine).
    Offline: the toy base domain trains the SAE and sets tau; the base and the shifted domain are evaluated."""
    if profile.real:
        return paper.MAIN_DATASETS, ("cifar100", "tinyimagenet"), paper.TABLE_3_COLUMNS
    return ("toy",), ("toy",), ("toy", "toy-shifted")


def ood_gate(profile: str | Profile | None = None, dataset: str | None = None, *, qs=paper.TABLE_3_GATE_Q,
             model: str | None = None, pretrained: str | None = "", device: str | None = None,
             progress: bool = False, run: Run | None = None) -> TableResult:
    """Table 3: VS2 with a generalized SAE (trained on a union of train splits) under distribution shift, ungated and
    behind the FVU gate (tau = the q-quantile of per-sample FVU on unlabeled train tokens), with the coverage, beside
    the target-domain SAE (each dataset's own train split). `dataset` evaluates that dataset only.
    `run`: a `Run` whose set-ups and target-domain SAEs are reused (and filled in)."""
    run = run or Run(profile, model=model, pretrained=pretrained, device=device, progress=progress)
    p = run.profile
    train_on, tau_on, evaluate = ood_gate_datasets(p)
    evaluate = (dataset,) if dataset else evaluate
    for ds in dict.fromkeys(train_on + tau_on + evaluate):        # each dataset loaded once, in order
        run.setup(ds)
    first = run.setup(evaluate[0])
    g, lam = p.steer.gamma, p.steer.lam
    saes = {ds: run.sae(ds) for ds in evaluate}     # the target-domain SAE: its own train split
    # The paper's gate data (the same function the main table's gate rows use). One training domain that is also
    # evaluated: its target-domain SAE is that SAE (same tokens, same seed), so it is reused.
    reuse = saes[train_on[0]] if len(train_on) == 1 and train_on[0] in saes else None
    gd, _ = general_gate_data(first, reuse, train_datasets=train_on, tau_datasets=tau_on,
                              train_features=lambda name: run.setup(name).train, progress=run.progress)
    gen, mu = gd.sae, gd.mu
    tau_fvu = steer.per_sample_fvu(gd.x_tau, gen, mu)
    taus = {q: steer.fvu_threshold(tau_fvu, q) for q in qs}
    cols = list(evaluate)
    res = _result("ood-gate", first, cols, "Table 3: ViT-B/32, generalized SAE on the CIFAR-100 + CUB + Tiny-ImageNet "
                  "train union, tau from the CIFAR-100 + Tiny-ImageNet train FVU")
    res.setting = (f"{', '.join(evaluate)}; {first.clip.name} ({first.clip.pretrained or 'random weights'}), "
                   f"profile {p.name}; generalized SAE on the train splits of {', '.join(train_on)}; "
                   f"tau from {', '.join(tau_on)}")
    ours: dict[str, dict[str, float]] = defaultdict(dict)            # row -> dataset -> value
    for ds in evaluate:
        s = run.setup(ds)
        x = s.test.cls.to(s.clip.device)
        target = saes[ds]
        vs2_gen, fvu = steer.vs2(x, gen, g, lam), steer.per_sample_fvu(x, gen, mu)
        ours["CLIP zero-shot"][ds] = _accuracy(s, x)
        ours["VS2 (target-domain SAE)"][ds] = _accuracy(s, steer.vs2(x, target, g, lam))
        ours["VS2 (generalized SAE)"][ds] = _accuracy(s, vs2_gen)
        ours["test FVU (generalized SAE, median)"][ds] = fvu.median().item()
        for q in qs:
            gated, mask = steer.gate(x, vs2_gen, fvu, taus[q])
            ours[f"VS2 + FVU gate (q={q:g})"][ds] = _accuracy(s, gated)
            ours[f"  coverage % (q={q:g})"][ds] = 100.0 * mask.float().mean().item()
    for label, values in ours.items():
        res.rows.append(TableRow(label, values, _table_3(label, cols)))
    res.notes += ["tau by q: " + ", ".join(f"{q:g}: {t:.3f}" for q, t in taus.items()),
                  f"gamma {g}, lambda {lam}; the per-sample FVU uses the generalized SAE's training mean (paper §3.2)"]
    if not set(cols) & set(paper.TABLE_3_COLUMNS):
        rows = [label for label in ours if _table_3(label, paper.TABLE_3_COLUMNS)]
        res.matrices.append(Matrix("the paper's Table 3 (ViT-B/32; coverage in %)", rows, list(paper.TABLE_3_COLUMNS),
                                   [list(_table_3(r, paper.TABLE_3_COLUMNS).values()) for r in rows]))
    return res


def _table_3(label: str, cols) -> dict[str, float]:
    """The paper's Table 3 entries of a row label (accuracy rows, gate rows, coverage rows) for known columns."""
    j = {c: paper.TABLE_3_COLUMNS.index(c) for c in cols if c in paper.TABLE_3_COLUMNS}
    if label in paper.TABLE_3:
        return {c: paper.TABLE_3[label][i] for c, i in j.items()}
    for q, cells in paper.TABLE_3_GATE.items():
        if label == f"VS2 + FVU gate (q={q:g})":
            return {c: cells[i][0] for c, i in j.items()}
        if label == f"  coverage % (q={q:g})":
            return {c: cells[i][1] for c, i in j.items()}
    return {}


# ------------------------------------------------------------ the resolution-shift grid (`reproduce --table shift`)
# `reproduce --table shift`: VS2 and its baselines as the evaluation images move away from the pretraining images.
#
# The grid, fixed before any of its numbers was looked at, and reported whole whatever it shows:
# - columns (RESOLUTIONS): the toy world at the pretraining size, 32 px (`toy`, in-domain: the negative control),
#   and downsampled to 16, 12 and 8 px (`toy-16px`, `toy-12px`, `toy-8px`; vs2mini.data.toyworld says how), each upsampled
#   back by the model's preprocessing. The book's main thread is `toyworld.MAIN_RESOLUTION` (8 px, by the paper's
#   CIFAR-to-CLIP size ratio).
# - rows (GRID_ROWS), each on its own domain's test split, with its own domain's SAE (trained on that domain's
#   unlabelled train split) unless the row says otherwise: CLIP zero-shot; SAE^F_REC; SAE^{F+g}_REC; centroid
#   steering (no SAE); VS2; VS2 + FVU gate (the in-domain gate: tau and mu from the domain's own train split, q 0.95);
#   VS2++ (pseudo); VS2++ (oracle); VS2 + PASS; then two references:
#   * re-centring on the pretraining-domain mean: x - mu_target + mu_32 (rescaled to ||x||), mu_target the domain's
#     unlabelled train mean, mu_32 the unlabelled train mean of the 32-px (pretraining-resolution) domain;
#   * the wrong centroid, the pattern of the paper's Table 3: VS2 on a shifted domain with the 32-px SAE, and
#     centroid steering with the 32-px mean.
# - each number: top-1 (%) on the domain's test split, and its gain over zero-shot with the paired standard error over
#   test images (the per-image correctness difference d_i = 1[row right] - 1[zero-shot right]:
#   se = std(d, ddof=1) / sqrt(N), in points).
# - gamma, lambda: the profile's (1.5, 2.1) everywhere (the paper's CIFAR-100 B/32 optimum); nothing is tuned per
#   domain.

RESOLUTIONS = (SIZE,) + SHIFTED          # 32 (in-domain), 16, 12, 8
GRID_ROWS = ("CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "centroid steering (no SAE)", "VS2",
             "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS",
             "re-centring on the 32-px mean", "VS2 with the 32-px SAE (wrong centroid)",
             "centroid steering with the 32-px mean (wrong centroid)")
REFERENCE_PX = SIZE                      # the pretraining resolution: its SAE and mean are the "wrong centroid"


@dataclass
class Cell:
    """One number of the grid: a row on one resolution's test split."""
    px: int
    method: str
    top1: float
    delta: float                          # top-1 minus zero-shot's, points
    se: float                             # paired standard error of delta over test images, points
    coverage: float | None = None


@dataclass
class Domain:
    """One resolution's pieces: set-up, its own SAE and PASS SAE (its train split), its unlabelled train mean."""
    px: int
    setup: Setup
    sae: object
    pass_sae: object
    mu: torch.Tensor                      # (d,) unlabelled train mean

    @property
    def x(self) -> torch.Tensor:
        return self.setup.test.cls.to(self.setup.clip.device)


def load_domain(run: Run, px: int) -> Domain:
    """The toy domain at `px` (32: "toy") from `run`: its set-up, SAE and PASS SAE trained on its own train split
    (built once per run)."""
    ds = resolution_dataset(px)
    s = run.setup(ds)
    return Domain(px, s, run.sae(ds), run.pass_sae(ds), s.train.cls.double().mean(0).float())


def label_free_signals(d: Domain, ref: Domain) -> dict[str, float]:
    """Unlabelled statistics of a domain (train mean mu, test tokens x): ||mu|| / mean ||x - mu|| and the centroid
    shift ||mu - mu_32|| / mean ||x - mu||, the candidates for forecasting VS2's sign without labels."""
    dev = (d.x - d.mu).norm(dim=-1).mean().item()
    return {"mu_over_dev": d.mu.norm().item() / dev, "shift_over_dev": (d.mu - ref.mu).norm().item() / dev,
            "sae_fvu": d.sae.fvu(d.x)}


@torch.no_grad()
def domain_rows(d: Domain, ref: Domain) -> list[Cell]:
    """Every row of GRID_ROWS on domain `d`; `ref` is the 32-px domain (its SAE and mean for the references). The
    steering and gate settings are the profile's."""
    from . import rows as RW
    s = d.setup
    gamma, lam = s.profile.steer.gamma, s.profile.steer.lam
    ctx = RW.Context(s, d.sae, d.pass_sae, None)
    outs = [RW.row_zero_shot(ctx), RW.row_sae_rec(ctx), RW.row_sae_rec_gamma(ctx), RW.row_centroid(ctx), RW.row_vs2(ctx),
            RW.row_gate_in_domain(ctx), RW.row_vs2pp_pseudo(ctx), RW.row_vs2pp_oracle(ctx), RW.row_pass(ctx)]
    x = d.x
    alpha = steer.centroid_alpha(gamma, lam)
    extra = [
        RW.Steered(GRID_ROWS[9], steer.rescale_to(x - d.mu + ref.mu, x)),
        RW.Steered(GRID_ROWS[10], steer.vs2(x, ref.sae, gamma, lam)),
        RW.Steered(GRID_ROWS[11], steer.centroid_steering(x, ref.mu, alpha)),
    ]
    base_right = s.logits(x).argmax(-1) == s.test.labels
    base = s.accuracy(x)
    cells = []
    for out, name in zip(outs + extra, GRID_ROWS):
        right = s.logits(out.cls).argmax(-1) == s.test.labels
        acc = s.accuracy(out.cls)
        cells.append(Cell(d.px, name, acc, acc - base, metrics.paired_se(right, base_right), out.coverage))
    return cells


def shift_grid(profile: str | Profile | None = None, resolutions: tuple[int, ...] = RESOLUTIONS, *,
               run: Run | None = None, progress: bool = False, **load) -> dict:
    """The whole grid: {"cells": [Cell as dict, ...], "signals": {px: {...}}, "settings": {...}}. `run`: a `Run`
    whose set-ups and SAEs are reused (and filled in); otherwise one is made (`load`: device=...)."""
    if run is not None and profile is not None:
        raise ValueError("pass either a profile or a run (whose profile it is), not both")
    run = run or Run(profile or "toy", progress=progress, **load)
    p = run.profile
    if p.name != "toy":
        raise ValueError(f"--table shift runs on the toy world's resolution domains; use --profile toy (got {p.name})")
    bad = [r for r in resolutions if r not in RESOLUTIONS]
    if bad:
        raise ValueError(f"resolutions {bad} are not toy domains; choose from {RESOLUTIONS}")
    gamma, lam = p.steer.gamma, p.steer.lam
    steer.check_finite(gamma=gamma, lam=lam)
    domains = {px: load_domain(run, px) for px in dict.fromkeys((REFERENCE_PX,) + tuple(resolutions))}
    ref = domains[REFERENCE_PX]
    cells, signals = [], {}
    for px in resolutions:
        cells += [asdict(c) for c in domain_rows(domains[px], ref)]
        signals[px] = label_free_signals(domains[px], ref)
    return {"cells": cells, "signals": signals, "resolutions": list(resolutions), "main_resolution": MAIN_RESOLUTION,
            "settings": {"gamma": gamma, "lam": lam, "alpha": steer.centroid_alpha(gamma, lam),
                         "n_test": len(ref.setup.test.labels), "n_train": len(ref.setup.train.labels)},
            "banner": ref.setup.banner, "real": ref.setup.real}


def shift_table(profile: str | Profile | None = None, dataset: str | None = None, *, model=None, pretrained="",
                device=None, progress: bool = False, run: Run | None = None):
    """`reproduce --table shift`: the grid as a TableResult (top-1 rows; gain and paired se as matrices). `run`:
    a toy `Run` whose set-ups and SAEs are reused."""
    p = run.profile if run is not None else (profile if isinstance(profile, Profile) else get_profile(profile))
    if p.name != "toy":           # `--table all` on a real profile: say so instead of failing the whole run
        return TableResult("shift", "toy resolution domains", f"profile {p.name}: not run", "-", p.real, [],
                           notes=["--table shift runs on the toy world's resolution domains only (--profile toy)"])
    if dataset is not None and dataset not in ("toy",) + tuple(resolution_dataset(px) for px in SHIFTED):
        raise ValueError(f"--table shift runs every toy resolution itself ({dataset!r} is not one of them); leave "
                         "out --dataset")
    if model is not None or pretrained not in ("", None, "toy"):
        raise ValueError("--table shift runs on the toy CLIP; leave out --model and --pretrained")
    grid = shift_grid(run=run or Run(p, device=device, progress=progress))
    cols = [f"{px}px" for px in grid["resolutions"]]
    res = TableResult("shift", SOURCES["shift"],
                      f"toy CLIP; resolutions {', '.join(cols)} (32 px = pretraining size, in-domain); gamma "
                      f"{grid['settings']['gamma']}, lambda {grid['settings']['lam']}; "
                      f"{grid['settings']['n_train']} train / {grid['settings']['n_test']} test per domain",
                      "CIFAR-100 (32 px) fed to a 224-px CLIP: the paper's headline setting, ratio 1/7", grid["real"],
                      cols, banner=grid["banner"])
    by = {(c["method"], c["px"]): c for c in grid["cells"]}
    for m in GRID_ROWS:
        res.rows.append(TableRow(m, {f"{px}px": by[m, px]["top1"] for px in grid["resolutions"]}))
    res.matrices.append(Matrix("gain over zero-shot (points)", list(GRID_ROWS), cols,
                               [[by[m, px]["delta"] for px in grid["resolutions"]] for m in GRID_ROWS]))
    res.matrices.append(Matrix("paired standard error of the gain (points, over test images)", list(GRID_ROWS), cols,
                               [[by[m, px]["se"] for px in grid["resolutions"]] for m in GRID_ROWS]))
    sig = grid["signals"]
    res.matrices.append(Matrix("label-free signals (unlabelled train mean mu, test tokens x)",
                               ["||mu|| / ||x - mu||", "||mu - mu_32|| / ||x - mu||", "SAE test FVU"], cols,
                               [[sig[px][k] for px in grid["resolutions"]]
                                for k in ("mu_over_dev", "shift_over_dev", "sae_fvu")]))
    res.notes += [f"the book's main thread: {MAIN_RESOLUTION} px (the paper's 32/224 size ratio applied to 32 px, "
                  "nearest grid size)",
                  "VS2 + FVU gate: the in-domain gate (the domain's own SAE; tau, mu from its own train split, q 0.95)",
                  "at 32 px the re-centring row is the identity and the wrong-centroid rows equal VS2 and centroid "
                  "steering (the 32-px SAE and mean are the domain's own); shown for completeness",
                  f"centroid steering: x + alpha (x - mu), alpha = lam (gamma - 1) = {grid['settings']['alpha']:.3g}"]
    res.grid = grid
    return res
