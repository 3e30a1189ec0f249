"""PASS: prototype-aligned sparse steering (SPEC 6). Labels are used only while training the SAE.

    L = FVU + w_aux * L_proto,   w_aux = 0.8 by default

The paper writes L_proto = ||z_i - zbar_class(i)||^2 and leaves open [NOT FOUND] how the class means are computed
and how the penalty is scaled. Our documented choices:
- z_i is the post-TopK code (dense view of the k selected values).
- zbar_c is the mean code of class c over the current mini-batch, with stop-gradient (the code is pulled to its
  class mean; the mean is not pulled to the code).
- The squared distances are summed over latents and samples and divided by the batch's total code variance
  sum_i ||z_i - zbar||^2: the within-class fraction of code variance, in [0, 1] and free of the activation scale,
  so w_aux is comparable with the FVU term (cf. SPEC Table 12, FVU 0.34 -> 0.57 as w_aux grows).
  The denominator keeps its gradient: with a stop-gradient there, shrinking every code to zero minimises the
  penalty and training collapses (FVU -> 1, seen at w_aux = 0.8 on the smoke data); as a ratio, the penalty can
  only fall by separating classes.
"""
from __future__ import annotations

import torch


def class_means(z: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """z: (B, n), labels: (B,) -> (C, n) per-class mean codes (zeros for classes absent from the batch)."""
    C = n_classes or int(labels.max()) + 1
    sums = torch.zeros(C, z.shape[1], device=z.device, dtype=z.dtype).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=C).clamp_min(1).to(z.dtype)
    return sums / counts[:, None]


def pass_loss(vals: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, n_latents: int) -> torch.Tensor:
    """vals, idx: (B, k) sparse codes, labels: (B,) -> scalar within-class fraction of code variance."""
    z = torch.zeros(vals.shape[0], n_latents, device=vals.device, dtype=vals.dtype).scatter(1, idx, vals)
    zbar = class_means(z.detach(), labels)[labels]                    # (B, n), stop-gradient
    total = (z - z.mean(0)).pow(2).sum().clamp_min(1e-12)
    return (z - zbar).pow(2).sum() / total


@torch.no_grad()
def prototype_directions(sae, X: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Class prototype directions W_dec^T cbar_c (C, d) from the mean SAE code of each class (SPEC 6, App. M).
    X: (N, d) CLS tokens, labels: (N,). Steering with (gamma - 1) times row c pushes towards class c."""
    codes = sae.encode(X)
    return sae.decode(class_means(codes, labels.to(codes.device), n_classes), bias=False)


def train_pass_sae(X: torch.Tensor, labels: torch.Tensor, w_aux: float = 0.8, **kwargs):
    """Train an SAE with the PASS loss: `train_sae(X, labels=labels, w_aux=w_aux, **kwargs)`."""
    from .trainer import train_sae
    return train_sae(X, labels=labels, w_aux=w_aux, **kwargs)
