"""Figures (matplotlib + seaborn). Every function returns the Figure; pass `real=False` for runs that are not real
results (the smoke profile) and the figure is stamped "NOT A REAL RESULT"."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

sns.set_theme(context="notebook", style="whitegrid")
SMOKE_STAMP = "SMOKE PROFILE: NOT A REAL RESULT"


def stamp(fig, real: bool):
    """Watermark a figure made from smoke-profile numbers."""
    if not real:
        fig.text(0.5, 0.5, SMOKE_STAMP, ha="center", va="center", fontsize=16, color="red", alpha=0.25,
                 rotation=20, transform=fig.transFigure, zorder=100)
        old = fig._suptitle.get_text() if fig._suptitle is not None else ""
        fig.suptitle(f"{old}  [smoke profile: not a real result]".strip(), color="red")
        fig.tight_layout()                    # make room for the suptitle
    return fig


def training_history(hist: dict, real: bool = True):
    """Per-epoch FVU, dead-latent fraction and L0 of `train_sae`'s history."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
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
    ax.legend()
    fig.tight_layout()
    return stamp(fig, real)


def image_grid(dataset, indices, titles=None, ncols: int = 8, title: str = "", real: bool = True):
    """Show dataset images (uint8 (3, H, W)) at `indices`."""
    indices = list(indices)
    nrows = max(1, -(-len(indices) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.9 * nrows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, (ax, i) in enumerate(zip(axes.flat, indices)):
        img, _ = dataset[int(i)]
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(titles[j] if titles else dataset.classnames[int(dataset.labels[int(i)])], fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return stamp(fig, real)


def tradeoff(x, fvu, acc, xlabel: str = "w_aux", real: bool = True):
    """Two-axis line plot: FVU and top-1 against a swept parameter (PASS's w_aux trade-off)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(x, fvu, marker="o", color="C0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("FVU (lower is better)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(x, acc, marker="s", color="C3")
    ax2.set_ylabel("VS2 top-1 (%)", color="C3")
    ax2.grid(False)
    ax.set_title(f"reconstruction vs. accuracy as {xlabel} grows")
    fig.tight_layout()
    return stamp(fig, real)


def method_bars(rows, title: str = "top-1 by method", real: bool = True):
    """Bars of reproduce.Row results, with the paper's value as a marker where known."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [r.method for r in rows]
    ax.bar(names, [r.top1 for r in rows], color="C0", label="vs2mini")
    paper = [(i, r.paper) for i, r in enumerate(rows) if r.paper is not None]
    if paper:
        ax.scatter([i for i, _ in paper], [v for _, v in paper], color="C3", marker="D", zorder=3, label="paper")
    ax.set(ylabel="top-1 (%)", title=title)
    ax.tick_params(axis="x", rotation=35)
    ax.legend()
    fig.tight_layout()
    return stamp(fig, real)


def similarity_heatmap(sim: torch.Tensor, labels=None, title: str = "cosine similarity", ax=None, real: bool = True):
    """A (C, C) similarity matrix in [-1, 1]; tick labels only when there are at most 25 classes."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 5.2))
    ticks = labels if labels is not None and len(labels) <= 25 else False
    sns.heatmap(sim.cpu().numpy(), vmin=-1, vmax=1, cmap="RdBu_r", square=True, xticklabels=ticks,
                yticklabels=ticks, ax=ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return stamp(fig, real)


def neighbor_purity(purity: torch.Tensor, agreement: torch.Tensor | None = None, n_neighbors: int | None = None,
                    real: bool = True):
    """Histogram per query of the fraction of its neighbours with its true label (and with its pseudo-label)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    data = {"true-label purity (oracle view)": purity.cpu().numpy()}
    if agreement is not None:
        data["pseudo-label agreement (what VS2++ sees)"] = agreement.cpu().numpy()
    sns.histplot(data, bins=20, binrange=(0, 1), element="step", ax=ax)
    ax.set(xlabel=f"fraction of the {n_neighbors or ''} neighbours".replace("  ", " "), ylabel="test images",
           title="How pure are the neighbourhoods?")
    fig.tight_layout()
    return stamp(fig, real)
