"""PASS: prototype-aligned sparse steering (paper v3 App. L, eq. 7). Labels are used only while training the SAE.

    L = FVU + w_aux * L_proto,   w_aux = 0.8 by default (paper v3 App. K/L, Table 11)

z_i is the post-TopK code of sample i (the dense view of its k selected values) and zbar_c the mean code of
class c over the current mini-batch. The paper does not state how zbar is computed (mini-batch, running or
full-data mean) nor how the penalty is scaled; two variants are selectable (`variant=`, `pass_variant=` in
`train_sae`, `--pass-variant` on the CLI):
- "eq7": eq. 7 literally, (1/B) sum_i ||z_i - zbar_{y_i}||^2: summed over latents, mean over samples, in the
  squared units of the codes (not normalised). No stop-gradient is needed or meaningful: within a class the
  deviations from the batch mean sum to zero, so the gradient through zbar is identically zero and
  dL/dz_i = (2/B) (z_i - zbar_{y_i}).
- "ratio": the within-class fraction of code variance, sum_i ||z_i - zbar_{y_i}||^2 / sum_i ||z_i - zbar||^2 (zbar the
  batch mean code), with the gradient through the denominator: a Fisher-style ratio in [0, 1], free of the code
  scale, which can only fall by separating classes, not by shrinking every code.
The default ("eq7") and the measurement behind it: see the comment at DEFAULT_PASS_VARIANT.
"""
from __future__ import annotations

import torch

PASS_VARIANTS = ("eq7", "ratio")
# The default of train_sae and the profiles is "eq7", the paper's formula: measured, it does not collapse at the
# paper's w_aux = 0.8 and it gives the shape of the paper's Table 12 (FVU rising with w_aux). Toy world (profile
# toy: 12,000 CLS tokens of the toy CLIP, d 64, n 256, k 8; 1,260 steps; CPU; NOT real CLIP features), test split:
#   w_aux:                       0      0.1    0.5    0.8    1.0    2.0     (paper Table 12 FVU: 0.34 0.49 - 0.54 0.57)
#   eq7   FVU                    0.046  0.194  0.314  0.349  0.378  0.676
#         within-class fraction  0.357  0.087  0.050  0.047  0.048  0.052
#         mean code norm         6.56   3.79   2.76   2.46   2.29   1.36
#   ratio FVU                    0.046  0.052  0.062  0.070  0.073  0.085
#         within-class fraction  0.357  0.133  0.087  0.079  0.077  0.069
#         mean code norm         6.56   12.2   16.3   16.2   16.4   15.6
# (`tables.ablations.pass_tradeoff` recomputes this table.) The caveat: eq7 is in squared code units and the FVU is
# scale-free, so its pull grows with the activation scale. On 400 tokens of a random-weight tiny CLIP (d 64, k 8,
# 1,000 steps) eq7 at 0.8 gives FVU 0.19 (plain 0.03), but on the same tokens times 10 the codes shrink to zero
# (code norm 21 -> 0.10, FVU 1.00: collapse), where the ratio variant is unchanged (FVU 0.05). Check the code norm
# (`pass_tradeoff`) before trusting eq7 on a new backbone; "ratio" is the scale-free fallback.
DEFAULT_PASS_VARIANT = "eq7"


def class_means(z: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """z: (B, n), labels: (B,) -> (C, n) per-class mean codes (zeros for classes absent from the batch)."""
    C = n_classes or int(labels.max()) + 1
    sums = torch.zeros(C, z.shape[1], device=z.device, dtype=z.dtype).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=C).clamp_min(1).to(z.dtype)
    return sums / counts[:, None]


def pass_loss(vals: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, n_latents: int,
              variant: str = "eq7") -> torch.Tensor:
    """vals, idx: (B, k) sparse codes, labels: (B,) -> scalar PASS penalty (`variant` "eq7" or "ratio", see above)."""
    if variant not in PASS_VARIANTS:
        raise ValueError(f"unknown PASS variant {variant!r}; choose one of {PASS_VARIANTS}")
    z = torch.zeros(vals.shape[0], n_latents, device=vals.device, dtype=vals.dtype).scatter(1, idx, vals)
    within = (z - class_means(z, labels)[labels]).pow(2).sum()
    if variant == "eq7":
        return within / z.shape[0]
    return within / (z - z.mean(0)).pow(2).sum().clamp_min(1e-12)


@torch.no_grad()
def prototype_directions(sae, X: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Class prototype directions W_dec^T cbar_c (C, d) from the mean SAE code of each class (paper v3 App. L, M).
    X: (N, d) CLS tokens, labels: (N,). Steering with (gamma - 1) times row c pushes towards class c."""
    codes = sae.encode(X)
    return sae.decode(class_means(codes, labels.to(codes.device), n_classes), bias=False)
