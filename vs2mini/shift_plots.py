"""Figures of the resolution-shift grid (vs2mini.shift_table): gain over zero-shot against the shift, and the plane
of the SAE rows. Each returns the Figure, stamped by `plots.stamp` when the run is not a real result."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .plots import display_name, stamp

# the rows drawn by default: the method rows and the two references (the wrong-centroid SAE row among them)
GAIN_ROWS = ("SAE^F_REC", "SAE^{F+g}_REC", "centroid steering (no SAE)", "VS2", "VS2++ (pseudo)", "VS2 + PASS",
             "re-centring on the 32-px mean", "VS2 with the 32-px SAE (wrong centroid)")


def gain_vs_shift(grid: dict, rows=GAIN_ROWS, real: bool = False, title: str = "gain over zero-shot as the images "
                  "shrink"):
    """grid: `shift_table.shift_grid(...)`. x: downsampling factor 32 / px (1 = the pretraining size); y: gain over
    zero-shot (points) with +-2 paired standard errors."""
    res = grid["resolutions"]
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    by = {(c["method"], c["px"]): c for c in grid["cells"]}
    shift = np.array([32 / px for px in res])
    styles = ["o-", "s-", "D--", "o-", "^-", "v-", ":", "x--"]
    for i, m in enumerate(rows):
        g = np.array([by[m, px]["delta"] for px in res])
        e = np.array([2 * by[m, px]["se"] for px in res])
        ax.errorbar(shift + 0.02 * (i - len(rows) / 2), g, yerr=e, fmt=styles[i % len(styles)], capsize=3,
                    lw=2.2 if m == "VS2" else 1.3, label=display_name(m), ms=5)
    ax.axhline(0, color="black", lw=1)
    ax.set_xticks(shift, [f"{px} px\n(x{32 / px:.2g})" for px in res])
    ax.set_xlabel("evaluation resolution (downsampling factor from the 32-px pretraining size)")
    ax.set_ylabel("top-1 gain over zero-shot (points)")
    ax.set_title(title + " (error bars: 2 paired s.e.)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return stamp(fig, real)


def sae_rows_plane(points: dict[str, tuple[float, float]], real: bool = False):
    """points: method -> (s, t) where the row's output is proportional to x - s b_pre + t eps(x), eps(x) = D(c) - x
    the SAE's reconstruction error (paper v3 eq. 3). Draws the rows as points of that plane."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (s, t) in points.items():
        ax.scatter([s], [t], s=60, zorder=3)
        ax.annotate(display_name(name), (s, t), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xlabel("share of the centroid b_pre removed (s)")
    ax.set_ylabel("share of the error eps(x) = D(c) - x added (t)")
    ax.set_title("each row is x - s b_pre + t eps(x), up to scale")
    ax.margins(0.2)
    return stamp(fig, real)
