"""Figures (matplotlib + seaborn). Every function returns the Figure; pass `real=False` for runs that are not real
results (the offline toy profile) and the figure is stamped "TOY MODEL: NOT A REAL RESULT"."""
from __future__ import annotations

import re
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..config import TOY_STAMP

sns.set_theme(context="notebook", style="whitegrid")

# Readable labels for the method keys of `vs2mini.reproduce` (the keys themselves stay as they are).
DISPLAY_NAMES = {
    "CLIP zero-shot": "CLIP zero-shot",
    "SAE^F_REC": "SAE rec.",
    "SAE^{F+g}_REC": "SAE rec. ×γ",
    "VS2": "VS2",
    "VS2 + FVU gate": "VS2 + FVU gate",
    "VS2 + FVU gate (in-domain tau)": "VS2 + FVU gate (in-domain τ)",
    "VS2++ (pseudo)": "VS2++ (pseudo-labels)",
    "VS2++ (oracle)": "VS2++ (oracle)",
    "VS2 + PASS": "VS2 + PASS",
    "SAE^A_REC": "SAE rec. (all layers)",
}


def display_name(method: str) -> str:
    """A method key of `reproduce` ("SAE^{F+g}_REC") -> a label for tables and charts ("SAE rec. ×γ").
    Unknown keys keep their text with the TeX-like sub/superscripts spelled out."""
    if method in DISPLAY_NAMES:
        return DISPLAY_NAMES[method]
    s = re.sub(r"SAE\^\{?([^}_]*)\}?_REC", lambda m: "SAE rec. " + m.group(1).replace("F+g", "×γ"), method)
    return s.replace("{", "").replace("}", "").replace("^", " ").replace("_", " ").replace("  ", " ").strip()


def _column_chunks(frame, width: int = 6) -> list:
    """A wide DataFrame as several tables of at most `width` columns, so that none is wider than the page."""
    cols = list(frame.columns)
    return [frame[cols[i:i + width]] for i in range(0, len(cols), width)] or [frame]


def show_table(res) -> None:
    """Display a TableResult in a notebook: its source and settings as one line of Markdown, the rows as a table,
    each matrix as a table, the notes as a list. No toy banner: the page says that once, at the top."""
    import pandas as pd
    from IPython.display import Markdown, display
    display(Markdown(f"**{res.source}**: this run {res.setting}; the paper {res.paper_setting}."))
    for part in _column_chunks(res.to_frame().round(2)):
        display(part)
    for m in res.matrices:
        display(Markdown(f"*{m.title}*"))
        for part in _column_chunks(pd.DataFrame(m.values, index=m.row_labels, columns=m.col_labels).round(3)):
            display(part)
    if res.notes:
        display(Markdown("\n".join(f"- {n}" for n in res.notes)))


def stamp(fig, real: bool):
    """Watermark a figure made from toy-model (offline profile) numbers."""
    if not real:
        # One stamp per figure, in the bottom-right margin; the page itself says once, at the top, that its
        # numbers come from the toy model. A second call (a figure stamped twice) adds nothing.
        if any(t.get_text() == TOY_STAMP for t in fig.texts):
            return fig
        fig.tight_layout(rect=(0, 0.05, 1, 1))    # a strip at the bottom for the stamp
        # In the bottom-right margin, outside every axes: the stamp never covers data, ticks or labels.
        fig.text(0.995, 0.008, TOY_STAMP, ha="right", va="bottom", fontsize=9, color="red",
                 transform=fig.transFigure)
    return fig


def training_history(hist: dict, real: bool = True):
    """Per-epoch FVU, dead-latent fraction and L0 of `train_sae`'s history."""
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.2))
    epochs = np.arange(1, len(hist["fvu"]) + 1)
    for ax, key, label in zip(axes, ("fvu", "dead_frac", "l0"), ("FVU (train)", "dead-latent fraction", "L0 (mean active)")):
        ax.plot(epochs, hist[key], marker="o", ms=3)
        ax.set(xlabel="epoch", ylabel=label, title=label)
    fig.tight_layout()
    return stamp(fig, real)


def per_class_bars(acc: torch.Tensor, classnames: list[str], title: str = "per-class top-1", top: int | None = None,
                   real: bool = True):
    """Horizontal bars of per-class accuracy (%), sorted; `top` keeps the best and worst `top` classes."""
    order = torch.argsort(acc.nan_to_num(-1), descending=True).tolist()
    if top and len(order) > 2 * top:
        order = order[:top] + order[-top:]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(order) + 1.2))
    sns.barplot(x=[acc[i].item() for i in order], y=[classnames[i] for i in order], ax=ax, color="C0", orient="h")
    ax.set(xlabel="top-1 (%)", ylabel="", title=title, xlim=(0, 100))
    fig.tight_layout()
    return stamp(fig, real)


def class_gains(acc_before: torch.Tensor, acc_after: torch.Tensor, classnames: list[str], top: int = 8,
                title: str = "per-class change", real: bool = True):
    """Diverging bars of the `top` largest per-class gains and losses (percentage points)."""
    delta = (acc_after - acc_before).nan_to_num(0)
    order = torch.argsort(delta, descending=True).tolist()
    order = order[:top] + [i for i in order[-top:] if i not in order[:top]]
    vals = [delta[i].item() for i in order]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh([classnames[i] for i in order], vals, color=["C2" if v >= 0 else "C3" for v in vals])
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="change in top-1 (points)", title=title)
    fig.tight_layout()
    return stamp(fig, real)


def heatmap(grid: torch.Tensor, gammas, lams, baseline: float | None = None, title: str = "VS2 top-1 (%)",
            real: bool = True):
    """grid: (len(gammas), len(lams)) accuracies; annotated; baseline subtracted when given."""
    data = grid.numpy() - (baseline or 0.0)
    fig, ax = plt.subplots(figsize=(1.0 * len(lams) + 2, 0.6 * len(gammas) + 1.5))
    sns.heatmap(data, annot=True, fmt=".1f", xticklabels=[f"{v:g}" for v in lams],
                yticklabels=[f"{v:g}" for v in gammas], cmap="RdBu_r" if baseline is not None else "viridis",
                center=0 if baseline is not None else None, ax=ax,
                cbar_kws={"label": "gain over zero-shot (points)" if baseline is not None else "top-1 (%)"})
    ax.set(xlabel="lambda (steering scale)", ylabel="gamma (amplification)", title=title)
    fig.tight_layout()
    return stamp(fig, real)


def fvu_histogram(train_fvu: torch.Tensor, test_fvu: torch.Tensor, tau: float | None = None, real: bool = True):
    """Per-sample FVU distributions with the gate threshold tau."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.histplot(train_fvu.cpu().numpy(), ax=ax, label="train", stat="density", color="C0", alpha=0.5)
    sns.histplot(test_fvu.cpu().numpy(), ax=ax, label="test", stat="density", color="C1", alpha=0.5)
    if tau is not None:
        ax.axvline(tau, color="k", ls="--", label=f"tau = {tau:.3f}")
    ax.set(xlabel="per-sample FVU", title="SAE reconstruction quality per image")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return stamp(fig, real)


def image_grid(dataset, indices, titles=None, ncols: int = 8, title: str = "", real: bool = True):
    """Show dataset images (uint8 (3, H, W)) at `indices`."""
    indices = list(indices)
    ncols = min(ncols, 4, max(1, len(indices)))     # at most 4 per row: titles stay >= 10 pt at page width
    nrows = max(1, -(-len(indices) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.0 * ncols, 2.3 * nrows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, (ax, i) in enumerate(zip(axes.flat, indices)):
        img, _ = dataset[int(i)]
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(titles[j] if titles else dataset.classnames[int(dataset.labels[int(i)])], fontsize=10)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return stamp(fig, real)


def tradeoff(x, fvu, acc, xlabel: str = "w_aux", real: bool = True):
    """Two-axis line plot: FVU and top-1 against a swept parameter (PASS's w_aux trade-off)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax.plot(list(x), list(fvu), marker="o", color="C0")
    ax.set(xlabel=xlabel, ylabel="FVU (lower is better)", title="reconstruction")
    acc = list(acc)
    ax2.plot(list(x), [a - acc[0] for a in acc], marker="s", color="C3")
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set(xlabel=xlabel, ylabel=f"VS2 top-1 vs. {xlabel} = {list(x)[0]:g} (points)", title="accuracy change")
    fig.suptitle(f"reconstruction vs. accuracy as {xlabel} grows", fontsize=12)
    fig.tight_layout()
    return stamp(fig, real)


def method_bars(gains: Mapping[str, float], paper_top1: Mapping[str, float | None] | None = None,
                title: str = "change over zero-shot by method", real: bool = True):
    """Horizontal bars of each method's change over zero-shot (points; the main table's `result.column(GAIN)`),
    with the paper's change as a marker where known (its top-1, `result.column(TOP1, paper_side=True)`, minus its
    zero-shot). Changes, not absolute top-1: on a 0-60 % axis a +-3-point effect would be invisible. The legend
    sits outside the data."""
    methods = list(gains)
    names = [display_name(m) for m in methods]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(methods) + 1.4))
    deltas = [gains[m] for m in methods]
    ax.barh(names, deltas, color=["C2" if d >= 0 else "C3" for d in deltas], label="vs2mini (this run)")
    ref = paper_top1 or {}
    base = ref.get("CLIP zero-shot")
    paper = [(i, ref[m] - base) for i, m in enumerate(methods) if ref.get(m) is not None and base is not None]
    if paper:
        ax.scatter([v for _, v in paper], [i for i, _ in paper], color="k", marker="D", zorder=3,
                   label="paper (its change)")
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="change in top-1 over zero-shot (points)", title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    fig.tight_layout()
    return stamp(fig, real)


def similarity_heatmap(sim: torch.Tensor, labels=None, title: str = "cosine similarity", ax=None, real: bool = True):
    """A (C, C) similarity matrix in [-1, 1]; tick labels only when there are at most 25 classes."""
    n = len(sim)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7.5, 6.6) if n > 12 else (6, 5.2))
    ticks = labels if labels is not None and len(labels) <= 25 else False
    data = sim.cpu().numpy()
    # the colour scale spans the values present (a cosine matrix in [0.3, 1] would be one block on [-1, 1])
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    annot = n <= 8
    sns.heatmap(data, vmin=lo, vmax=hi if hi > lo else lo + 1e-6, cmap="viridis", square=True, xticklabels=ticks,
                yticklabels=ticks, ax=ax, annot=annot, fmt=".2f", cbar_kws={"label": "cosine"})
    if ticks:
        ax.tick_params(labelsize=9 if n > 12 else 10)
    ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return stamp(fig, real)


def neighbour_purity(purity: torch.Tensor, agreement: torch.Tensor | None = None, n_neighbours: int | None = None,
                    real: bool = True):
    """Histogram per query of the fraction of its neighbours with its true label (and with its pseudo-label)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    data = {"true-label purity (oracle view)": purity.cpu().numpy()}
    if agreement is not None:
        data["pseudo-label agreement (what VS2++ sees)"] = agreement.cpu().numpy()
    sns.histplot(data, bins=20, binrange=(0, 1), element="step", ax=ax)
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False, title=None)
    ax.set(xlabel=f"fraction of the {n_neighbours or ''} neighbours".replace("  ", " "), ylabel="test images",
           title="How pure are the neighbourhoods?")
    fig.tight_layout()
    return stamp(fig, real)


def alpha_curve(alphas, acc, changed, baseline: float, real: bool = True):
    """VS2 against the one number that matters, alpha = lambda (gamma - 1): the change of top-1 over zero-shot
    (points) and the share of test images whose prediction changes (%), both (len(alphas),), in two panels that
    share the alpha axis (no twin axes whose curves would overlap)."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.5, 5.0), sharex=True)
    ax.plot(alphas, [a - baseline for a in acc], marker="o", color="C0")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="top-1 vs. zero-shot\n(points)", title="How far to push: VS2 as alpha grows")
    ax2.plot(alphas, changed, marker="s", color="C1")
    ax2.set(xlabel="alpha = lambda (gamma - 1)", ylabel="predictions\nchanged (%)")
    fig.tight_layout()
    return stamp(fig, real)
