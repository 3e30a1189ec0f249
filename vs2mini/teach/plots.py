"""Figures (matplotlib + seaborn). Every function returns the Figure; pass `real=False` for runs that are not real
results (the offline toy profile) and the figure is stamped "TOY MODEL: NOT A REAL RESULT"."""
from __future__ import annotations

import re

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


def stamp(fig, real: bool):
    """Watermark a figure made from toy-model (offline profile) numbers."""
    if not real:
        old = fig._suptitle.get_text() if fig._suptitle is not None else ""
        fig.suptitle(f"{old}  [{TOY_STAMP.lower()}]".strip(), color="red")
        fig.tight_layout(rect=(0, 0.05, 1, 1))    # room for the suptitle, and a strip at the bottom for the stamp
        # In the bottom-right margin, outside every axes: the stamp never covers data, ticks or labels.
        fig.text(0.995, 0.008, TOY_STAMP, ha="right", va="bottom", fontsize=9, color="red",
                 transform=fig.transFigure)
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
    names = [display_name(r.method) for r in rows]
    ax.bar(names, [r.top1 for r in rows], color="C0", label="vs2mini")
    paper = [(i, r.paper) for i, r in enumerate(rows) if r.paper is not None]
    if paper:
        ax.scatter([i for i, _ in paper], [v for _, v in paper], color="C3", marker="D", zorder=3, label="paper")
    ax.set(ylabel="top-1 (%)", title=title)
    ax.tick_params(axis="x", rotation=35)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
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


def neighbour_purity(purity: torch.Tensor, agreement: torch.Tensor | None = None, n_neighbours: int | None = None,
                    real: bool = True):
    """Histogram per query of the fraction of its neighbours with its true label (and with its pseudo-label)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    data = {"true-label purity (oracle view)": purity.cpu().numpy()}
    if agreement is not None:
        data["pseudo-label agreement (what VS2++ sees)"] = agreement.cpu().numpy()
    sns.histplot(data, bins=20, binrange=(0, 1), element="step", ax=ax)
    ax.set(xlabel=f"fraction of the {n_neighbours or ''} neighbours".replace("  ", " "), ylabel="test images",
           title="How pure are the neighbourhoods?")
    fig.tight_layout()
    return stamp(fig, real)


def alpha_curve(alphas, acc, changed, baseline: float, real: bool = True):
    """VS2 against the one number that matters, alpha = lambda (gamma - 1): top-1 (%) and the share of test images
    whose prediction changes (%), both (len(alphas),). The zero-shot top-1 `baseline` is a dashed line."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(alphas, acc, marker="o", color="C0", label="VS2 top-1")
    ax.axhline(baseline, color="C0", ls="--", lw=1, label="zero-shot top-1")
    ax.set(xlabel="alpha = lambda (gamma - 1)", ylabel="top-1 (%)", title="How far to push: VS2 as alpha grows")
    ax2 = ax.twinx()
    ax2.plot(alphas, changed, marker="s", color="C1", label="predictions changed")
    ax2.set_ylabel("predictions changed (%)", color="C1")
    ax2.grid(False)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize=8)
    fig.tight_layout()
    return stamp(fig, real)


# Stages of the VS2 pipeline, in order, as the intro page's diagram draws them.
PIPELINE_STAGES = [
    ("image", "I"),
    ("ViT image\nencoder", "frozen CLIP"),
    ("CLS token x", "before LN_post"),
    ("SAE encoder", "top-k codes c"),
    ("amplify", "v = D(γc) − D(c)"),
    ("steer", "x + λv, rescaled"),
    ("LN_post,\nprojection P", "z = LN_post(x̂) P"),
    ("text head", "ŷ = argmax cos(z, t_y)"),
]


def pipeline_diagram():
    """The VS2 pipeline as boxes and arrows (image -> ViT -> CLS token -> SAE top-k -> amplify -> steer ->
    LN_post, projection -> text head), in two rows so that it stays readable at page width. Pure matplotlib, so it
    renders offline; the book ships it as an SVG."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    fig, ax = plt.subplots(figsize=(8.4, 4.4))
    ax.set_xlim(0, 8)
    ax.set_ylim(0, 4.3)
    ax.axis("off")
    colours = ["#dddddd", "#c6dbef", "#c6dbef", "#fdd0a2", "#fdd0a2", "#fdae6b", "#c6dbef", "#c7e9c0"]
    arrow = dict(arrowstyle="-|>", mutation_scale=14, color="#333333", lw=1.2)
    centres = []
    for i, ((label, detail), colour) in enumerate(zip(PIPELINE_STAGES, colours)):
        row, col = divmod(i, 4)
        col = col if row == 0 else 3 - col            # a snake: the second row runs right to left
        x0, y0 = 2 * col + 0.12, 2.35 - 2.05 * row
        ax.add_patch(FancyBboxPatch((x0, y0), 1.72, 1.05, boxstyle="round,pad=0.04", fc=colour, ec="#333333"))
        ax.text(x0 + 0.86, y0 + 0.68, label, ha="center", va="center", fontsize=10.5, weight="bold")
        ax.text(x0 + 0.86, y0 + 0.22, detail, ha="center", va="center", fontsize=8.5, color="#333333")
        centres.append((x0, y0))
    for i in range(len(centres) - 1):
        (xa, ya), (xb, yb) = centres[i], centres[i + 1]
        if ya != yb:          # end of the first row: straight down
            start, end = (xa + 0.86, ya - 0.04), (xb + 0.86, yb + 1.09)
        elif xb > xa:
            start, end = (xa + 1.76, ya + 0.52), (xb - 0.04, yb + 0.52)
        else:
            start, end = (xa - 0.04, ya + 0.52), (xb + 1.76, yb + 0.52)
        ax.add_patch(FancyArrowPatch(start, end, **arrow))
    ax.plot([0.1, 5.9], [3.62, 3.62], color="#08519c", lw=2.5)
    ax.text(3.0, 3.78, "CLIP image encoder, unchanged", ha="center", fontsize=10, color="#08519c")
    ax.plot([6.1, 7.9], [3.62, 3.62], color="#d94801", lw=2.5)
    ax.text(7.0, 3.78, "VS2", ha="center", fontsize=10, color="#d94801", weight="bold")
    ax.plot([4.1, 7.9], [0.15, 0.15], color="#d94801", lw=2.5)
    ax.text(6.0, -0.12, "VS2: no labels, no gradients", ha="center", fontsize=10, color="#d94801")
    ax.plot([0.1, 3.9], [0.15, 0.15], color="#08519c", lw=2.5)
    ax.text(2.0, -0.12, "CLIP's last steps, unchanged", ha="center", fontsize=10, color="#08519c")
    ax.set_ylim(-0.35, 4.1)
    fig.tight_layout()
    return fig


def centroid_steering(alpha: float = 1.05, seed: int = 0):
    """2-D picture of VS2 as centroid-deviation steering (paper v3 Prop. 3.1):
    x + lambda v = x + alpha (x - b_pre) + alpha eps(x), eps(x) = x_tilde - x. Returns (fig, points) where
    `points` holds the drawn 2-D vectors (x, b_pre, x_tilde, steered) so a test can check the geometry."""
    gen = np.random.default_rng(seed)
    cloud = gen.normal(size=(200, 2)) @ np.array([[1.0, 0.3], [0.0, 0.6]])
    b_pre = cloud.mean(0)
    x = b_pre + np.array([1.6, 0.9])
    x_tilde = x + np.array([0.25, -0.35])                  # an imperfect reconstruction
    eps = x_tilde - x
    push = alpha * (x - b_pre)
    steered = x + push + alpha * eps
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter(cloud[:, 0], cloud[:, 1], s=8, color="#bbbbbb", label="training CLS tokens")
    ax.scatter(*b_pre, s=80, marker="X", color="k", zorder=3, label="centroid $b_{pre}$ (≈ mean μ)")
    ax.scatter(*x, s=60, color="C0", zorder=3, label="token $x$")
    ax.scatter(*x_tilde, s=40, color="C2", zorder=3, label=r"reconstruction $\tilde x$")
    ax.scatter(*steered, s=70, marker="*", color="C3", zorder=3, label=r"steered $x + \lambda v$")
    arrow = dict(arrowstyle="-|>", lw=1.6, mutation_scale=14)
    ax.annotate("", xy=x, xytext=b_pre, arrowprops=dict(color="#555555", ls="--", **arrow))
    ax.annotate("", xy=x + push, xytext=x, arrowprops=dict(color="C0", **arrow))
    ax.annotate("", xy=steered, xytext=x + push, arrowprops=dict(color="C2", **arrow))
    ax.annotate("", xy=x_tilde, xytext=x, arrowprops=dict(color="C2", lw=1, arrowstyle="-|>", ls=":"))
    ax.text(*(b_pre + 0.5 * (x - b_pre) + np.array([-0.15, 0.2])), r"$x - b_{pre}$", color="#555555",
            ha="right")
    ax.text(*(x + 0.5 * push + np.array([-0.1, 0.2])), r"$\alpha\,(x - b_{pre})$", color="C0", ha="right")
    ax.text(*(x + push + 0.5 * alpha * eps + np.array([0.15, 0.0])), r"$\alpha\,\varepsilon(x)$", color="C2")
    ax.set(title=f"VS2 pushes x away from the SAE's centroid (alpha = {alpha:g})", xticks=[], yticks=[])
    shown = np.stack([*cloud, x + push, steered])            # arrows do not enlarge the axes by themselves
    lo, hi = shown.min(0) - 0.4, shown.max(0) + 0.4
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig, {"x": x, "b_pre": b_pre, "x_tilde": x_tilde, "steered": steered}


def save_book_figures(outdir) -> list:
    """Write the book's static figures (pipeline.svg, centroid_steering.svg) to `outdir`; returns the paths.
    Run `python -c "from vs2mini.teach import plots; plots.save_book_figures('book/figures')"` after changing them."""
    from pathlib import Path
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "vs2mini"          # stable ids: the committed SVGs change only with the drawing
    paths = []
    for name, fig in (("pipeline.svg", pipeline_diagram()), ("centroid_steering.svg", centroid_steering()[0])):
        path = outdir / name
        fig.savefig(path, metadata={"Date": None}, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
