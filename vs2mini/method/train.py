"""Training a TopKSAE on cached activations (paper v3 §3, App. C; sparsify's trainer where the paper is silent).

Defaults follow the paper where it speaks (lr 5e-4, linear warm-up then linear decay, FVU loss, b_pre at the data
mean) and sparsify where it does not. The paper does not state the batch size, the number of epochs or steps, the
seed or the AuxK weight; our documented choices:
- Budget in optimiser steps: `epochs` is raised until the run makes at least `min_steps` Adam steps, so a small
  dataset trains as long as a large one (CUB-200's 5,994 vectors at batch 4096 are one step per epoch: 30 epochs
  would be 30 steps, while sparsify's warm-up alone is 1,000). `training_schedule` computes the plan from the data
  size without training. Batch 4096 (MSAE's CLIP recipe); warm-up = 5% of the steps; no gradient clipping (sparsify).
- Judge: a fixed random `holdout` fraction of the train split is held out. After every epoch the run is judged on
  it by the objective it is trained for, and the best checkpoint is returned (more steps can overfit a small set);
  `patience` (in steps) optionally stops the run once that objective has not improved for that long.
  A plain SAE is judged by its held-out FVU. A PASS SAE is judged by its OWN objective on the held-out slice,
  `heldout_objective` = held-out FVU + w_aux * pass_loss(held-out codes, held-out labels) (the class means taken
  over the whole held-out slice). Our choice, the paper states no selection rule: judging PASS by FVU alone
  silently undoes it, because the PASS term trades reconstruction for class alignment, so the FVU is lowest at
  the first epochs, before the codes are aligned. Measured on the Gaussian class clusters of
  tests/test_pass_selection.py (3 seeds, 40 epochs, w_aux 0.8): the FVU rule returns epoch 1, whose held-out codes
  keep 0.57-0.66 of their variance inside the classes (a plain SAE: 0.20-0.27); the PASS objective returns
  epoch 40, 0.03-0.04, at a held-out FVU of 0.58-0.62 instead of 0.45-0.49. The labels are
  re-indexed with the split: the fit slice trains with labels[fit], the held-out slice is judged with
  labels[held].
- b_pre = mean of the training (fit) vectors (the paper's "empirical mean"; sparsify used the first batch).
- AuxK off by default (sparsify's default). When on: coefficient `auxk_alpha`, k_aux = d/2, decoded WITHOUT b_pre
  (the fix of sparsify #132), residual detached, normalised by the batch total variance (sparsify). A latent is
  dead after `dead_threshold` samples without firing (default: one epoch, since sparsify's 10M-token threshold
  never fires on a 50k-image cache).
- PASS (labels given, w_aux > 0): loss + w_aux * pass_loss.pass_loss(..., variant=pass_variant).
- Dead-feature pruning (paper v3 App. C: "dead feature threshold 100", "any feature seldom activated is pruned"):
  `prune_below=m` removes, after training, every latent that fires on fewer than m of the fit vectors
  (`prune_rare_latents`). Default None (no pruning), and why: the paper says neither on which data nor when it
  counts; sparsify, the library it used, never removes latents (its `dead_feature_threshold` only marks latents
  dead for AuxK and the `dead_pct` log); and a pruned SAE no longer has the width (expansion x d) that the
  tables state. `prune_below=100` is the paper's number read as a count of firing samples.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .judge import heldout_objective, holdout_size, selection_key, split_holdout, summary  # noqa: F401 (train.*)
from .pass_loss import DEFAULT_PASS_VARIANT, PASS_VARIANTS, pass_loss
from .prune import firing_counts, prune_rare_latents  # noqa: F401
from .sae import TopKSAE


def batch_fvu(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """sum ||x - x_hat||^2 / sum ||x - mean_batch(x)||^2, in float32 (sparsify's training loss)."""
    x, x_hat = x.float(), x_hat.float()
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)


def auxk_loss(sae: TopKSAE, pre: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor, k_aux: int,
              total_variance: torch.Tensor | float) -> torch.Tensor:
    """Gao et al.'s AuxK. pre: (B, n) pre-activations, residual: (B, d) = x - x_hat, dead: (n,) bool.
    Normalised like sparsify's: by the batch's total variance sum ||x - mean(x)||^2 (the FVU denominator).
    Its gradient reaches W_dec, b_enc and W_enc of the dead latents through `pre` (Gao et al. and the sparsify of
    the paper's time; sparsify >= 1.0 trains only the decoder with it). We keep the paper-era path."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    scale = min(n_dead / k_aux, 1.0)          # from the requested k_aux, before clamping (Gao et al.; sparsify)
    k_aux = min(k_aux, n_dead)
    vals, idx = torch.where(dead, pre, -torch.inf).topk(k_aux, dim=-1, sorted=False)
    e_hat = sae.decode(vals.clamp_min(0), idx, bias=False)     # no b_pre: the residual has none (sparsify #132)
    e = residual.detach().float()
    return scale * (e_hat.float() - e).pow(2).sum() / max(float(total_variance), 1e-12)


@torch.no_grad()
def remove_parallel_grad(sae: TopKSAE) -> None:
    """Project each W_dec row's gradient onto the tangent space of the unit sphere at that row."""
    if sae.W_dec.grad is not None:
        W, g = sae.W_dec, sae.W_dec.grad
        g.sub_((g * W).sum(-1, keepdim=True) * W)


def epoch_batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split a permutation into batches; a remainder under half a batch joins the previous batch. A last batch of
    one or two vectors has (almost) no variance, so its FVU (÷ batch variance) explodes and poisons Adam's state."""
    batches = list(perm.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size // 2:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to 1 over `warmup` steps, then linear decay to 0 at `total`.
    Step s of the warm-up runs at (s + 1) / warmup: the first step already moves the weights. sparsify (via
    transformers' get_linear_schedule_with_warmup) uses s / warmup, so its first step runs at lr 0 and is wasted;
    the difference is one step of the warm-up."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


class FiringStats:
    """Which latents fired: `since_fired` (n,) samples since each latent last fired (AuxK's dead test) and
    `fired` (n,) whether it fired this epoch (the dead fraction in the history). Updated without host syncs."""

    def __init__(self, n_latents: int, device):
        self.since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)
        self.fired = torch.zeros(n_latents, dtype=torch.bool, device=device)

    @torch.no_grad()
    def update(self, vals: torch.Tensor, idx: torch.Tensor) -> None:
        """vals, idx: (B, k) codes of one batch; a latent fires when selected with a positive value.
        sparsify counts every selected index, including a 0 picked by top-k when fewer than k pre-activations are
        positive; a zero code contributes nothing to the reconstruction, so we do not count it as firing."""
        active = torch.zeros_like(self.fired, dtype=vals.dtype).index_add_(0, idx.flatten(), (vals > 0).flatten().to(vals.dtype)) > 0
        self.fired |= active
        self.since_fired = torch.where(active, 0, self.since_fired + vals.shape[0])


def train_step(sae: TopKSAE, opt, sched, x: torch.Tensor, stats: FiringStats, y: torch.Tensor | None = None, *,
               amp: bool = False, auxk_alpha: float = 0.0, k_aux: int = 384, dead_threshold: int = 0,
               w_aux: float = 0.0, pass_variant: str = DEFAULT_PASS_VARIANT) -> torch.Tensor:
    """One optimisation step on x: (B, d) (labels y: (B,) for PASS). Returns detached (loss, fvu, auxk, pass, L0 sum)
    as a (5,) float64 tensor on the device, without a host sync (AuxK with dead latents adds one)."""
    dev = x.device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        vals, idx = sae.encode_sparse(x, check=False)                 # data were validated once by the caller
    vals = vals.float()
    x_hat = sae.decode(vals, idx)
    fvu = batch_fvu(x, x_hat)
    loss, aux, pas = fvu, torch.zeros((), device=dev), torch.zeros((), device=dev)
    if auxk_alpha > 0:
        dead = stats.since_fired > dead_threshold
        if dead.any():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                pre = sae.pre_acts(x, check=False)
            aux = auxk_loss(sae, pre.float(), x - x_hat, dead, k_aux, (x - x.mean(0)).pow(2).sum())
            loss = loss + auxk_alpha * aux
    if w_aux > 0:
        pas = pass_loss(vals, idx, y, sae.n_latents, variant=pass_variant)
        loss = loss + w_aux * pas
    opt.zero_grad(set_to_none=True)
    loss.backward()
    remove_parallel_grad(sae)
    opt.step()
    sched.step()
    sae.normalize_decoder()                                           # rows exactly unit norm after every step
    stats.update(vals.detach(), idx)
    return torch.stack([loss.detach(), fvu.detach(), aux.detach(), pas.detach(),
                        (vals > 0).sum().to(loss.dtype)]).double()


def fused_adam_available(device: torch.device) -> bool:
    """Whether this torch has a fused Adam kernel for `device` (CUDA; CPU since torch 2.4): one kernel for all
    parameters instead of a loop of small ops (on CPU 3072 x 768: about 9x faster per optimiser step, same values)."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
        return True
    except (RuntimeError, ValueError):
        return False


def check_training_data(X: torch.Tensor, labels: torch.Tensor | None) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a float tensor (N, d); got {getattr(X, 'shape', type(X).__name__)}")
    if X.shape[0] < 2:
        raise ValueError("need at least 2 training vectors")
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or inf; clean the activations (e.g. rebuild the feature cache)")
    spread = (X - X[0]).abs().amax()
    if spread == 0:
        raise ValueError("X is constant (every row is the same): there is nothing to learn; check the features")
    if X.abs().amax() > 1e6 or spread < 1e-6:
        raise ValueError(f"X is absurdly scaled (max |x| {X.abs().amax():.3g}, spread {spread:.3g}); CLIP "
                         "activations are of order 1: rescale X (or check how it was produced)")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != X.shape[0]):
        raise ValueError(f"labels must be (N,) = ({X.shape[0]},); got {tuple(labels.shape)}")


# ---------------------------------------------------------------------------------------------- the budget
def n_batches(n: int, batch_size: int) -> int:
    """Number of batches `epoch_batches` makes of n vectors (a remainder under half a batch is merged)."""
    q, r = divmod(n, batch_size)
    if q == 0:
        return 1
    return q + (1 if r >= max(1, batch_size // 2) else 0)


@dataclass(frozen=True)
class Schedule:
    """The optimisation plan of one `train_sae` run (computed from sizes alone)."""
    n_fit: int               # vectors the SAE is trained on
    n_heldout: int           # vectors held out to judge it
    batch_size: int          # effective batch size (at most n_fit)
    steps_per_epoch: int
    epochs: int              # epochs run unless stopped early (>= the requested epochs)
    steps: int               # epochs * steps_per_epoch: the optimiser steps, >= min_steps
    warmup_steps: int


def training_schedule(n: int, *, epochs: int = 30, batch_size: int = 4096, min_steps: int | None = None,
                      holdout: float = 0.0, warmup_frac: float = 0.05) -> Schedule:
    """The plan for n train vectors: epochs are raised until the run makes at least `min_steps` optimiser steps."""
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1; got epochs={epochs}, batch_size={batch_size}")
    if min_steps is not None and min_steps < 0:
        raise ValueError(f"min_steps must be >= 0 or None, got {min_steps}")
    n_held = holdout_size(n, holdout)
    n_fit = n - n_held
    bs = min(batch_size, n_fit)
    spe = n_batches(n_fit, bs)
    if min_steps:
        epochs = max(epochs, math.ceil(min_steps / spe))
    total = epochs * spe
    return Schedule(n_fit, n_held, bs, spe, epochs, total, max(1, round(warmup_frac * total)))


def _check_options(k_aux, dead_threshold, w_aux, labels, pass_variant, prune_below=None) -> None:
    """Bad options fail before any work (0 is honoured where it means something, rejected where it cannot)."""
    if prune_below is not None and (not isinstance(prune_below, int) or prune_below < 1):
        raise ValueError(f"prune_below must be a positive integer (samples a latent must fire on) or None, got "
                         f"{prune_below!r}")
    if k_aux is not None and (not isinstance(k_aux, int) or k_aux < 1):
        raise ValueError(f"k_aux must be a positive integer (or None for d/2), got {k_aux!r}")
    if dead_threshold is not None and (not isinstance(dead_threshold, int) or dead_threshold < 0):
        raise ValueError(f"dead_threshold must be an integer >= 0 samples (or None for one epoch), got "
                         f"{dead_threshold!r}")
    if w_aux < 0:
        raise ValueError(f"w_aux must be >= 0, got {w_aux}")
    if w_aux > 0 and labels is None:
        raise ValueError("PASS (w_aux > 0) needs class labels")
    if pass_variant not in PASS_VARIANTS:
        raise ValueError(f"unknown pass_variant {pass_variant!r}; choose one of {PASS_VARIANTS}")


def train_sae(X: torch.Tensor, *, n_latents: int | None = None, expansion: int = 4, k: int | None = None,
              epochs: int = 30, batch_size: int = 4096, min_steps: int | None = None, holdout: float = 0.0,
              patience: int | None = None, lr: float = 5e-4, warmup_frac: float = 0.05,
              auxk_alpha: float = 0.0, k_aux: int | None = None, dead_threshold: int | None = None,
              labels: torch.Tensor | None = None, w_aux: float = 0.0, pass_variant: str = DEFAULT_PASS_VARIANT,
              bf16: bool = False, seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
              sae: TopKSAE | None = None, prune_below: int | None = None) -> tuple[TopKSAE, dict[str, list[float]]]:
    """Train a TopKSAE on X: (N, d). Returns (sae on `device`, history): per epoch `step` (optimiser steps so far),
    `loss`, `fvu` (mean train batch FVU), `auxk`, `pass`, `dead_frac`, `l0`, `lr`, and with `holdout > 0`
    `heldout_fvu` (FVU of the held-out slice after the epoch), for PASS also `heldout_objective` (held-out FVU +
    w_aux * PASS term with the held-out labels). `summary(history)` condenses it.

    Budget: at least `min_steps` optimiser steps (epochs are raised to reach them; `training_schedule`). With a
    held-out slice the returned SAE is the epoch with the lowest held-out objective (FVU; PASS: its own objective,
    see the module docstring); `patience` (steps without a held-out improvement) stops early.
    `prune_below=m` removes the latents that fire on fewer than m fit vectors after training (default None: off;
    `history["pruned"]` = how many). `labels: (N,)` with `w_aux > 0` trains a PASS SAE (`pass_variant`, method/pass_loss.py).
    `bf16` runs the encoder GEMM under bf16 autocast (weights, loss and Adam stay fp32).
    `sae=` continues training that SAE: its weights, b_pre included, are kept (no re-initialisation), and
    `n_latents`/`k` must be None or equal to its own. The same seed gives the same SAE (same device and versions).
    """
    check_training_data(X, labels)
    _check_options(k_aux, dead_threshold, w_aux, labels, pass_variant, prune_below)
    if patience is not None and (patience < 1 or holdout == 0):
        raise ValueError(f"patience={patience} needs holdout > 0 and must be >= 1 step")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    N, d = X.shape
    plan = training_schedule(N, epochs=epochs, batch_size=batch_size, min_steps=min_steps, holdout=holdout,
                             warmup_frac=warmup_frac)
    fit_idx, held_idx = split_holdout(N, plan.n_heldout, seed)
    X = X.to(device, torch.float32)
    y = labels.to(device)[fit_idx.to(device)] if labels is not None else None         # re-indexed to the fit slice
    y_held = labels.to(device)[held_idx.to(device)] if labels is not None and plan.n_heldout else None
    X_held = X[held_idx.to(device)] if plan.n_heldout else None
    X = X[fit_idx.to(device)] if plan.n_heldout else X
    N = plan.n_fit
    if sae is None:
        sae = TopKSAE(d, n_latents or expansion * d, 64 if k is None else k, seed=seed).to(device)
        with torch.no_grad():
            sae.b_pre.copy_(X.double().mean(0).float())        # the paper's "empirical mean" (whole fit set)
    else:
        if sae.d_in != d:
            raise ValueError(f"SAE expects d={sae.d_in}, data has d={d}")
        for name, want in (("n_latents", n_latents), ("k", k)):
            if want is not None and want != getattr(sae, name):
                raise ValueError(f"train_sae(sae=...) continues the given SAE ({name}={getattr(sae, name)}); "
                                 f"{name}={want} conflicts with it: drop the argument or build a new SAE")
        sae = sae.to(device)
    sae.requires_grad_(True).train()
    with torch.no_grad():
        sae.normalize_decoder()

    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999), fused=fused_adam_available(device))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(plan.warmup_steps, plan.steps))
    k_aux = d // 2 if k_aux is None else k_aux
    dead_threshold = N if dead_threshold is None else dead_threshold
    gen = torch.Generator(device=device).manual_seed(seed)
    judge_pass = X_held is not None and w_aux > 0
    keys = (("step", "loss", "fvu", "auxk", "pass", "dead_frac", "l0", "lr")
            + (("heldout_fvu",) if X_held is not None else ()) + (("heldout_objective",) if judge_pass else ()))
    hist: dict[str, list[float]] = {key: [] for key in keys}
    stats = FiringStats(sae.n_latents, device)
    best, best_state, best_step, step = math.inf, None, 0, 0
    for _epoch in tqdm(range(plan.epochs), disable=not progress, desc="train SAE"):
        sums = torch.zeros(5, device=device, dtype=torch.float64)   # loss, fvu, auxk, pass (x B), nonzeros
        stats.fired.zero_()
        for b in epoch_batches(torch.randperm(N, device=device, generator=gen), plan.batch_size):
            terms = train_step(sae, opt, sched, X[b], stats, None if y is None else y[b], amp=bf16,
                               auxk_alpha=auxk_alpha, k_aux=k_aux, dead_threshold=dead_threshold, w_aux=w_aux,
                               pass_variant=pass_variant)
            sums += terms * terms.new_tensor([len(b)] * 4 + [1])
            step += 1
        s = (sums / N).tolist()
        hist["step"].append(step)
        for key, v in zip(("loss", "fvu", "auxk", "pass", "l0"), s):
            hist[key].append(v)
        hist["dead_frac"].append(1.0 - stats.fired.float().mean().item())
        hist["lr"].append(sched.get_last_lr()[0])
        if X_held is not None:
            held_fvu, held = heldout_objective(sae, X_held, y_held, w_aux, pass_variant)
            hist["heldout_fvu"].append(held_fvu)
            if judge_pass:
                hist["heldout_objective"].append(held)
            if held < best:
                best, best_step = held, step
                best_state = copy.deepcopy(sae.state_dict())
            elif patience is not None and step - best_step >= patience:
                break
    if best_state is not None:
        sae.load_state_dict(best_state)                       # the checkpoint the held-out slice judged best
    sae.eval().requires_grad_(False)      # inference from here on: encode/decode build no autograd graph
    if prune_below is not None:
        n_before = sae.n_latents
        sae, _ = prune_rare_latents(sae, X, prune_below)
        hist["pruned"] = n_before - sae.n_latents
    return sae, hist
