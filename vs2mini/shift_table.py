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

GRID_ROWS = ("CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "centroid steering (no SAE)", "VS2",
             "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS",
             "re-centring on the 32-px mean", "VS2 with the 32-px SAE (wrong centroid)",
             "centroid steering with the 32-px mean (wrong centroid)")
