"""Steering rules on CLS tokens x: (N, d) (paper v3 §3.1, §3.3, §4.3). All are label-free at test time.

VS2:    v = D(gamma c) - D(c) = (gamma - 1) W_dec^T c,   x_hat = (x + lam v) ||x|| / ||x + lam v||
VS2++:  v = (gamma - 1) W_dec^T (cbar+ - cbar-) over a query's retrieved positives / negatives
Gate:   skip steering where the per-sample FVU(x) = ||x_tilde - x||^2 / ||x - mu||^2 exceeds a threshold tau.

The rescale keeps ||x||; ln_post follows, so it does not change predictions up to LayerNorm's eps (paper v3 §3.1).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .sae import TopKSAE

# The steering defaults, for every method and dataset: the CIFAR-100 ViT-B/32 optimum of the paper's sweep (v3 App. B,
# Figs. 3 and 5; paper.SENSITIVITY_OPTIMUM); the paper gives no per-dataset values. Profiles read them from here.
GAMMA = 1.5
LAM = 2.1

Edit = Callable[[torch.Tensor], torch.Tensor]       # (B, d) CLS tokens -> (B, d): a steering rule at one layer


def check_finite(**values: float) -> None:
    """Clear errors for NaN/inf hyper-parameters (they would silently turn every output into NaN)."""
    for name, v in values.items():
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a finite number, got {v}")


def _same_shape(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    """Refuse shapes that would broadcast silently (e.g. width-1 directions against (N, d) tokens)."""
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def rescale_to(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Scale each row of y: (N, d) to the norm of the matching row of x."""
    return y * (x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def apply_steering(x: torch.Tensor, v: torch.Tensor, lam: float, rescale: bool = True) -> torch.Tensor:
    """x, v: (N, d) -> x + lam v, optionally rescaled to ||x||."""
    check_finite(lam=lam)
    _same_shape(x, v, "x and v")
    y = x + lam * v
    return rescale_to(y, x) if rescale else y


@torch.no_grad()
def vs2_vector(x: torch.Tensor, sae: TopKSAE, gamma: float) -> torch.Tensor:
    """x: (N, d) -> v = (gamma - 1) W_dec^T c: (N, d)."""
    check_finite(gamma=gamma)
    vals, idx = sae.select_topk(sae.pre_acts(x))
    return (gamma - 1.0) * sae.decode(vals, idx, bias=False)   # on the SAE's device


@torch.no_grad()
def vs2(x: torch.Tensor, sae: TopKSAE, gamma: float = GAMMA, lam: float = LAM, rescale: bool = True) -> torch.Tensor:
    """VS2 (paper v3 §3.1, eq. 2): x: (N, d) -> steered (N, d) on the SAE's device. gamma = 1 or lam = 0 is the identity."""
    x = x.to(sae.device)
    return apply_steering(x, vs2_vector(x, sae, gamma), lam, rescale)


@torch.no_grad()
def sae_reconstruction(x: torch.Tensor, sae: TopKSAE, gamma: float = 1.0) -> torch.Tensor:
    """Baselines SAE^F_REC (gamma = 1): D(c), and SAE^{F+gamma}_REC: D(gamma c). x: (N, d) -> (N, d)."""
    check_finite(gamma=gamma)
    vals, idx = sae.select_topk(sae.pre_acts(x))
    return sae.decode(gamma * vals, idx)


@torch.no_grad()
def per_sample_fvu(x: torch.Tensor, sae: TopKSAE, mu: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """FVU(x) = ||x_tilde - x||^2 / ||x - mu||^2 per row (paper v3 §3.2); mu: (d,) training mean. -> (N,)."""
    if mu.shape != (sae.d_in,):
        raise ValueError(f"mu must be the training mean of shape ({sae.d_in},), got {tuple(mu.shape)}")
    x, mu = x.to(sae.device), mu.to(sae.device)
    err = torch.cat([(sae.reconstruct(c) - c).pow(2).sum(-1) for c in x.split(chunk)])
    return err / (x - mu).pow(2).sum(-1).clamp_min(1e-12)


def fvu_threshold(train_fvu: torch.Tensor, q: float) -> float:
    """tau = q-quantile of per-sample FVU on (unlabelled) training activations."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile q must be in (0, 1], got {q}")
    if train_fvu.ndim != 1 or len(train_fvu) == 0 or not torch.isfinite(train_fvu).all():
        raise ValueError(f"train_fvu must be a non-empty (N,) tensor of finite values, got shape "
                         f"{tuple(train_fvu.shape)}")
    return torch.quantile(train_fvu.double().cpu(), q).item()


@torch.no_grad()
def gate(x: torch.Tensor, x_steered: torch.Tensor, fvu: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep x where FVU(x) > tau (reconstruction too poor to trust), else x_steered.
    Returns (output (N, d), steered mask (N,)); coverage = mask.float().mean()."""
    check_finite(tau=tau)
    _same_shape(x, x_steered, "x and x_steered")
    if fvu.shape != x.shape[:1]:
        raise ValueError(f"fvu must hold one value per row, shape ({x.shape[0]},); got {tuple(fvu.shape)}")
    x = x.to(x_steered.device)
    steered = (fvu <= tau).to(x.device)
    return torch.where(steered[:, None], x_steered, x), steered


@torch.no_grad()
def gate_threshold(sae: TopKSAE, x_unlabeled: torch.Tensor, mu: torch.Tensor, q: float) -> float:
    """tau for the FVU gate: the q-quantile of per-sample FVU(x; mu) over unlabelled CLS tokens x_unlabeled: (M, d).
    The paper's gate (v3 §4.3) takes x_unlabeled = the CIFAR-100 + Tiny-ImageNet train union and mu the mean of the
    generalized SAE's training data; the in-domain variant takes one dataset's own train split."""
    return fvu_threshold(per_sample_fvu(x_unlabeled, sae, mu), q)


@torch.no_grad()
def gated_vs2(x: torch.Tensor, sae: TopKSAE, mu: torch.Tensor, tau: float, gamma: float = GAMMA,
              lam: float = LAM) -> tuple[torch.Tensor, torch.Tensor]:
    """VS2 with the FVU gate: steer x: (N, d) where FVU(x; mu) <= tau, keep it elsewhere.
    Returns (output (N, d), steered mask (N,)); coverage = mask.float().mean()."""
    x = x.to(sae.device)
    return gate(x, vs2(x, sae, gamma, lam), per_sample_fvu(x, sae, mu), tau)


# ------------------------------------------------------------------------------------------- VS2++ (one path)
@torch.no_grad()
def bank_directions(sae: TopKSAE, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """x: (N, d) bank CLS tokens -> their decoded SAE directions W_dec^T c (N, d), without b_pre: computed once per
    bank, then every query's VS2++ vector is a weighted sum of its neighbours' rows (`vs2pp_from_bank`)."""
    out = torch.empty(x.shape[0], sae.d_in, device=sae.device)    # filled chunk by chunk: no torch.cat copy
    for s in range(0, x.shape[0], chunk):
        vals, idx = sae.encode_sparse(x[s:s + chunk])
        out[s:s + chunk] = sae.decode(vals, idx, bias=False)
    return out


def vs2pp_weights(pos_mask: torch.Tensor) -> torch.Tensor:
    """pos_mask: (Q, M) bool, True for S+ -> the VS2++ averaging weights (Q, M): +1/|S+| on positives, -1/|S-| on
    negatives. With the neighbour indices nn_idx: (Q, M) as column indices, these are the values of a sparse
    (Q, B) matrix over the bank with M entries per row.

    The paper does not say what happens to empty sets; our documented defaults: an empty S- contributes nothing
    (cbar- = 0: steer towards the positives' mean code); an empty S+ gives an all-zero row (the query is left
    unsteered: no neighbourhood support)."""
    pos = pos_mask.bool()
    n_pos = pos.sum(1, keepdim=True)
    w = torch.where(pos, 1.0 / n_pos.clamp_min(1), -1.0 / (pos.shape[1] - n_pos).clamp_min(1))
    return w * (n_pos > 0)                                       # S+ empty: zero row


@torch.no_grad()
def vs2pp_from_bank(x: torch.Tensor, bank_dirs: torch.Tensor, nn_idx: torch.Tensor, pos_mask: torch.Tensor,
                    gamma: float = GAMMA, lam: float = LAM, rescale: bool = True) -> torch.Tensor:
    """VS2++ (paper v3 §3.3, eq. 5), the package's one form: x: (Q, d) queries; bank_dirs: (B, d) decoded bank
    directions W_dec^T c_j (`bank_directions`); nn_idx: (Q, M) neighbour indices into the bank; pos_mask: (Q, M)
    bool, True for S+ (the rest is S-). -> steered (Q, d) on bank_dirs' device.

    Decoding is linear, so vbar = (gamma - 1) W_dec^T (cbar+ - cbar-) = (gamma - 1) W @ bank_dirs, W the sparse
    (Q, B) matrix of `vs2pp_weights` (empty sets: see there) with columns nn_idx, computed by `F.embedding_bag`
    (a CSR matrix times a dense one) without gathering a (Q, M, d) block; then the VS2 step with vbar."""
    if (x.ndim != 2 or bank_dirs.ndim != 2 or nn_idx.ndim != 2 or nn_idx.shape != pos_mask.shape
            or nn_idx.shape[0] != x.shape[0]):
        raise ValueError(f"x (Q, d), bank_dirs (B, d), nn_idx (Q, M) and pos_mask (Q, M) must match; got "
                         f"{tuple(x.shape)}, {tuple(bank_dirs.shape)}, {tuple(nn_idx.shape)}, {tuple(pos_mask.shape)}")
    if bank_dirs.shape[1] != x.shape[1]:
        raise ValueError(f"bank_dirs (B, d) must match x (Q, d) in d = {x.shape[1]}, got {tuple(bank_dirs.shape)}")
    check_finite(gamma=gamma, lam=lam)
    dev = bank_dirs.device
    w = vs2pp_weights(pos_mask.to(dev)).to(bank_dirs.dtype)
    v = (gamma - 1.0) * F.embedding_bag(nn_idx.to(dev), bank_dirs, per_sample_weights=w, mode="sum")
    return apply_steering(x.to(dev), v, lam, rescale)


# ------------------------------------------------------------------------ centroid steering and VS2's two parts
def centroid_alpha(gamma: float, lam: float) -> float:
    """The alpha of centroid steering that matches VS2 at (gamma, lam): alpha = lam (gamma - 1).

    Derivation (paper v3 Proposition 3.1, eq. 3). Write the SAE's reconstruction x_tilde = D(c) = W_dec^T c + b_pre
    and its error eps(x) = x_tilde - x. Then W_dec^T c = (x - b_pre) + eps(x), and VS2's unrescaled output is
        x + lam v = x + lam (gamma - 1) W_dec^T c = x + alpha (x - b_pre) + alpha eps(x),   alpha = lam (gamma - 1).
    The first two terms are centroid steering x + alpha (x - mu) with the SAE's centroid b_pre in place of mu; the
    last is the residual part. The rescale to ||x|| and ln_post's scale invariance (LayerNorm divides by the
    standard deviation, up to its eps) make only the direction of x + alpha (x - mu) matter, i.e.
    x - alpha / (1 + alpha) mu: at (1.5, 2.1), alpha = 1.05, so VS2 removes 1.05 / 2.05 = 51 % of the centroid and
    adds 51 % of the reconstruction error. Centroid steering with the same alpha is VS2 with a perfect SAE whose
    b_pre is the data mean."""
    check_finite(gamma=gamma, lam=lam)
    return lam * (gamma - 1.0)


@torch.no_grad()
def centroid_steering(x: torch.Tensor, mu: torch.Tensor, alpha: float, rescale: bool = True) -> torch.Tensor:
    """Centroid steering (no SAE): x + alpha (x - mu), rescaled to ||x||. x: (N, d), mu: (d,) an unlabelled mean
    (the table uses the train-split mean; never test statistics)."""
    if mu.ndim != 1 or mu.shape[0] != x.shape[-1]:
        raise ValueError(f"mu must be a mean of shape ({x.shape[-1]},), got {tuple(mu.shape)}")
    return apply_steering(x, x - mu.to(x.device, x.dtype), alpha, rescale)


@torch.no_grad()
def vs2_parts(x: torch.Tensor, sae: TopKSAE, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """VS2's steering vector v = (gamma - 1) W_dec^T c split by Proposition 3.1 (see `centroid_alpha`):
    (centroid part (gamma - 1)(x - b_pre), residual part (gamma - 1)(D(c) - x)), each (N, d); they sum to v."""
    check_finite(gamma=gamma)
    x = x.to(sae.device)
    vals, idx = sae.select_topk(sae.pre_acts(x))
    return (gamma - 1.0) * (x - sae.b_pre), (gamma - 1.0) * (sae.decode(vals, idx) - x)


def vs2_edit(sae: TopKSAE, gamma: float, lam: float) -> Edit:
    """VS2 at one layer with that layer's SAE (`vs2`), as an edit for `vs2mini.clip.depth.run_tower`."""
    return lambda x: vs2(x, sae, gamma, lam)


def reconstruction_edit(sae: TopKSAE) -> Edit:
    """Replace the CLS token by its SAE reconstruction (one layer of SAE^A_REC), as an edit for `run_tower`."""
    return lambda x: sae_reconstruction(x, sae)
