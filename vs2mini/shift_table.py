"""`reproduce --table shift`: VS2 and its baselines as the evaluation images move away from the pretraining images.

The grid, fixed before any of its numbers was looked at, and reported whole whatever it shows:
- columns (RESOLUTIONS): the toy world at the pretraining size, 32 px (`toy`, in-domain: the negative control),
  and downsampled to 16, 12 and 8 px (`toy-16px`, `toy-12px`, `toy-8px`; vs2mini.toyworld says how), each upsampled
  back by the model's preprocessing. The book's main thread is `toyworld.MAIN_RESOLUTION` (8 px, by the paper's
  CIFAR-to-CLIP size ratio).
- rows (GRID_ROWS), each on its own domain's test split, with its own domain's SAE (trained on that domain's
  unlabelled train split) unless the row says otherwise: CLIP zero-shot; SAE^F_REC; SAE^{F+g}_REC; centroid
  steering (no SAE); VS2; VS2 + FVU gate (the in-domain gate: tau and mu from the domain's own train split, q 0.95);
  VS2++ (pseudo); VS2++ (oracle); VS2 + PASS; then two references:
  * re-centring on the pretraining-domain mean: x - mu_target + mu_32 (rescaled to ||x||), mu_target the domain's
    unlabelled train mean, mu_32 the unlabelled train mean of the 32-px (pretraining-resolution) domain;
  * the wrong centroid, the pattern of the paper's Table 3: VS2 on a shifted domain with the 32-px SAE, and
    centroid steering with the 32-px mean.
- each number: top-1 (%) on the domain's test split, and its gain over zero-shot with the paired standard error over
  test images (the per-image correctness difference d_i = 1[row right] - 1[zero-shot right]:
  se = std(d, ddof=1) / sqrt(N), in points).
- gamma, lambda: the profile's (1.5, 2.1) everywhere (the paper's CIFAR-100 B/32 optimum); nothing is tuned per
  domain.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import metrics, steer
from .pipeline import Setup, load_setup
from .profiles import Profile, get_profile
from .toyworld import MAIN_RESOLUTION, RESOLUTIONS as SHIFTED, SIZE, resolution_dataset

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


def load_domain(profile: Profile, px: int, progress: bool = False, **kw) -> Domain:
    """The set-up of the toy domain at `px` (32: "toy"), its SAE and PASS SAE trained on its own train split."""
    from .reproduce import train_pass
    s = load_setup(profile, resolution_dataset(px), progress=progress, **kw)
    sae = s.train_sae(progress=progress)[0]
    pass_sae = train_pass(s, progress=progress)[0]
    return Domain(px, s, sae, pass_sae, s.train.cls.double().mean(0).float())


def label_free_signals(d: Domain, ref: Domain) -> dict[str, float]:
    """Unlabelled statistics of a domain (train mean mu, test tokens x): ||mu|| / mean ||x - mu|| and the centroid
    shift ||mu - mu_32|| / mean ||x - mu||, the candidates for forecasting VS2's sign without labels."""
    dev = (d.x - d.mu).norm(dim=-1).mean().item()
    return {"mu_over_dev": d.mu.norm().item() / dev, "shift_over_dev": (d.mu - ref.mu).norm().item() / dev,
            "sae_fvu": d.sae.fvu(d.x)}


@torch.no_grad()
def domain_rows(d: Domain, ref: Domain, gamma: float, lam: float, gate_q: float = 0.95) -> list[Cell]:
    """Every row of GRID_ROWS on domain `d`; `ref` is the 32-px domain (its SAE and mean for the references)."""
    from . import reproduce as R
    s = d.setup
    ctx = R.Context(s, d.sae, d.pass_sae, None, gamma, lam, gate_q)
    outs = [R.row_zero_shot(ctx), R.row_sae_rec(ctx), R.row_sae_rec_gamma(ctx), R.row_centroid(ctx), R.row_vs2(ctx),
            R.row_gate_in_domain(ctx), R.row_vs2pp_pseudo(ctx), R.row_vs2pp_oracle(ctx), R.row_pass(ctx)]
    x = d.x
    alpha = steer.centroid_alpha(gamma, lam)
    extra = [
        R.Steered(GRID_ROWS[9], steer.rescale_to(x - d.mu + ref.mu, x)),
        R.Steered(GRID_ROWS[10], steer.vs2(x, ref.sae, gamma, lam)),
        R.Steered(GRID_ROWS[11], steer.centroid_steering(x, ref.mu, alpha)),
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
               gamma: float | None = None, lam: float | None = None, progress: bool = False,
               domains: dict[int, Domain] | None = None, **kw) -> dict:
    """The whole grid: {"cells": [Cell as dict, ...], "signals": {px: {...}}, "settings": {...}}. `domains` (by px)
    are reused when given (and filled in)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile or "toy")
    if p.name != "toy":
        raise ValueError(f"--table shift runs on the toy world's resolution domains; use --profile toy (got {p.name})")
    bad = [r for r in resolutions if r not in RESOLUTIONS]
    if bad:
        raise ValueError(f"resolutions {bad} are not toy domains; choose from {RESOLUTIONS}")
    gamma = p.gamma if gamma is None else gamma
    lam = p.lam if lam is None else lam
    steer.check_finite(gamma=gamma, lam=lam)
    domains = domains if domains is not None else {}
    for px in dict.fromkeys((REFERENCE_PX,) + tuple(resolutions)):
        if px not in domains:
            domains[px] = load_domain(p, px, progress=progress, **kw)
    ref = domains[REFERENCE_PX]
    cells, signals = [], {}
    for px in resolutions:
        cells += [asdict(c) for c in domain_rows(domains[px], ref, gamma, lam)]
        signals[px] = label_free_signals(domains[px], ref)
    return {"cells": cells, "signals": signals, "resolutions": list(resolutions), "main_resolution": MAIN_RESOLUTION,
            "settings": {"gamma": gamma, "lam": lam, "alpha": steer.centroid_alpha(gamma, lam),
                         "n_test": len(ref.setup.test.labels), "n_train": len(ref.setup.train.labels)},
            "banner": ref.setup.banner, "real": ref.setup.real}


def shift_table(profile: str | Profile | None = None, dataset: str | None = None, *, model=None, pretrained="",
                device=None, progress: bool = False, **_):
    """`reproduce --table shift`: the grid as a TableResult (top-1 rows; gain and paired se as matrices)."""
    from .experiments import Matrix, TableResult, TableRow
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    if p.name != "toy":           # `--table all` on a real profile: say so instead of failing the whole run
        return TableResult("shift", "toy resolution domains", f"profile {p.name}: not run", "-", p.real, [],
                           notes=["--table shift runs on the toy world's resolution domains only (--profile toy)"])
    if dataset not in (None, "toy"):
        raise ValueError("--table shift runs every toy resolution itself; leave out --dataset")
    if model is not None or pretrained not in ("", None, "toy"):
        raise ValueError("--table shift runs on the toy CLIP; leave out --model and --pretrained")
    grid = shift_grid(p, progress=progress, device=device)
    cols = [f"{px}px" for px in grid["resolutions"]]
    res = TableResult("shift", "Table 1a's rows under a pretraining-to-evaluation shift (the toy world's resolution "
                      "domains; Table 3's wrong-centroid pattern)",
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
