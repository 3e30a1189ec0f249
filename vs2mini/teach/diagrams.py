"""The book's diagrams, drawn by the package (no data): the VS2 pipeline, centroid steering, VS2++, the FVU gate,
PASS and the "when does VS2 help" plane (`DIAGRAMS`); `save_book_figures` writes them to book/figures/."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


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
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig, {"x": x, "b_pre": b_pre, "x_tilde": x_tilde, "steered": steered}


def _arrow(ax, start, end, colour, lw: float = 1.8, ls: str = "-"):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", lw=lw, mutation_scale=14, color=colour, ls=ls))


def vs2pp_diagram(seed: int = 0):
    """VS2++ in the plane (paper v3 §3.3, eq. 4): a query, its N retrieved neighbours split into S+ (the query's
    pseudo-label) and S- (the rest), their mean codes cbar+ and cbar-, and the contrast vector cbar+ - cbar- that
    steers the query. Returns (fig, points) with the drawn 2-D points so a test can check the geometry."""
    gen = np.random.default_rng(seed)
    query = np.array([0.0, 0.0])
    pos = gen.normal(size=(7, 2)) * 0.45 + np.array([0.9, 0.7])       # neighbours of the query's class
    neg = gen.normal(size=(5, 2)) * 0.45 + np.array([-0.6, 0.9])      # confusable neighbours
    cpos, cneg = pos.mean(0), neg.mean(0)
    contrast = cpos - cneg
    steered = query + 0.8 * contrast
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    ax.add_patch(plt.Circle(query, 2.0, fill=False, ls=":", color="#888888"))
    ax.text(query[0] - 1.95, query[1] - 1.25, "the N nearest\ntraining images", color="#666666", fontsize=10)
    ax.scatter(*pos.T, s=45, color="C2", label="S+: pseudo-label = query's")
    ax.scatter(*neg.T, s=45, color="C3", marker="s", label="S-: any other label")
    ax.scatter(*cpos, s=160, marker="X", color="C2", edgecolor="k", zorder=4, label=r"$\bar c^{+}$ (mean code)")
    ax.scatter(*cneg, s=160, marker="X", color="C3", edgecolor="k", zorder=4, label=r"$\bar c^{-}$ (mean code)")
    ax.scatter(*query, s=120, color="C0", edgecolor="k", zorder=4, label="query $x_q$")
    _arrow(ax, cneg, cpos, "k")
    ax.text(*(0.5 * (cneg + cpos) + np.array([0.0, 0.18])), r"$\bar c^{+} - \bar c^{-}$", ha="center",
            fontsize=11)
    _arrow(ax, query, steered, "C0", lw=2.4)
    ax.text(*(steered + np.array([0.08, -0.22])), r"$x_q + \lambda \bar v$", color="C0", fontsize=11)
    ax.set(xlim=(-2.3, 2.3), ylim=(-2.1, 2.3), xticks=[], yticks=[],
           title="VS2++: steer along the contrast of the neighbours' codes")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig, {"query": query, "pos": pos, "neg": neg, "cbar_pos": cpos, "cbar_neg": cneg, "steered": steered}


def gate_diagram(q: float = 0.9, seed: int = 0):
    """The FVU gate (paper v3 §3.2, §4.3): a histogram of per-sample FVU on unlabelled training tokens, the
    threshold tau at its q-quantile, and the two outcomes, steer (FVU <= tau) or keep x (FVU > tau). The values
    are illustrative. Returns (fig, tau)."""
    gen = np.random.default_rng(seed)
    fvu = np.exp(gen.normal(np.log(0.3), 0.35, size=4000))
    tau = float(np.quantile(fvu, q))
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    bins = np.linspace(0, fvu.max(), 60)
    ax.hist(fvu[fvu <= tau], bins=bins, color="C2", alpha=0.8, label=r"FVU $\leq \tau$: steer, $\hat x$")
    ax.hist(fvu[fvu > tau], bins=bins, color="#999999", alpha=0.9, label=r"FVU $> \tau$: keep $x$")
    ax.axvline(tau, color="k", ls="--", lw=1.5)
    top = ax.get_ylim()[1]
    ax.text(tau, 0.92 * top, rf" $\tau$ = {q:g}-quantile", va="top", fontsize=11)
    ax.text(0.5 * tau, 0.55 * top, f"steered\n({100 * q:.0f}% of training tokens)", ha="center", fontsize=10)
    ax.set(xlabel="per-sample FVU(x) = ||x~ - x||^2 / ||x - mu||^2", ylabel="training tokens",
           title="The FVU gate: steer only where the SAE reconstructs well")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig, tau


def pass_diagram(pull: float = 0.6, seed: int = 0):
    """PASS (paper v3 eq. 7): the prototype term pulls each class's sparse codes towards the class mean. Left: a
    plain SAE's codes of three classes; right: the same codes moved `pull` of the way to their class mean.
    Returns (fig, points) with the codes before and after and the class means."""
    gen = np.random.default_rng(seed)
    centres = np.array([[0.0, 1.2], [1.2, -0.6], [-1.2, -0.6]])
    labels = np.repeat(np.arange(3), 12)
    codes = centres[labels] + gen.normal(size=(36, 2)) * 0.55
    means = np.stack([codes[labels == c].mean(0) for c in range(3)])
    pulled = codes + pull * (means[labels] - codes)
    fig, axes = plt.subplots(1, 2, figsize=(8.2, 4.0), sharex=True, sharey=True)
    for ax, pts, title in ((axes[0], codes, "plain SAE: reconstruction only"),
                           (axes[1], pulled, r"PASS: + $w_{aux}\,\|z_i - \bar z_{y_i}\|^2$")):
        for c, marker in zip(range(3), "osD"):
            ax.scatter(*pts[labels == c].T, s=30, color=f"C{c}", marker=marker, label=f"class {c}")
            ax.scatter(*means[c], s=170, marker="X", color=f"C{c}", edgecolor="k", zorder=4)
        ax.set(xticks=[], yticks=[], title=title)
        ax.set_aspect("equal")
    for i in range(0, 36, 3):
        _arrow(axes[1], codes[i], pulled[i], "#777777", lw=0.8)
    axes[0].set_ylabel("sparse codes (2-D sketch)")
    fig.suptitle("PASS pulls the codes of a class towards its prototype (X)", fontsize=12)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig, {"codes": codes, "pulled": pulled, "means": means, "labels": labels}


def when_plane(alpha: float = 1.05, gamma: float = 1.5, x_dev: float = 1.0, residual: float = 0.45,
               shrink: float = 0.8):
    """When does VS2 help? The plane spanned by x - mu (horizontal) and the reconstruction's residual direction
    (vertical), with mu = b_pre at the origin. An SAE reconstruction x~ keeps `shrink` of x - mu and adds a
    residual of size `residual`: x~ = mu + shrink (x - mu) + residual e2. The paper's three SAE rows are then
    SAE rec. = x~, SAE rec. x gamma = D(gamma c) ~ mu + gamma (x~ - mu), and VS2 = x + alpha (x - mu) +
    alpha (x~ - x) (before the rescale, paper v3 Prop. 3.1). Returns (fig, points) in plane coordinates."""
    mu = np.zeros(2)
    x = np.array([x_dev, 0.0])
    x_tilde = np.array([shrink * x_dev, residual])
    rec_g = mu + gamma * (x_tilde - mu)
    vs2 = x + alpha * (x - mu) + alpha * (x_tilde - x)
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    pts = {"mu": mu, "x": x, "x_tilde": x_tilde, "rec_gamma": rec_g, "vs2": vs2}
    styles = {"mu": ("k", "X", r"$\mu$ = $b_{pre}$"), "x": ("C0", "o", "token $x$"),
              "x_tilde": ("C2", "s", r"SAE rec. $\tilde x = D(c)$"),
              "rec_gamma": ("C4", "D", r"SAE rec. $\times\gamma$ = $D(\gamma c)$"),
              "vs2": ("C3", "*", r"VS2: $x + \alpha(x-\mu) + \alpha\,\varepsilon(x)$")}
    for key, (colour, marker, label) in styles.items():
        ax.scatter(*pts[key], s=150 if marker == "*" else 80, color=colour, marker=marker, zorder=4,
                   edgecolor="k", label=label)
    _arrow(ax, mu, x, "C0")
    _arrow(ax, x, x_tilde, "C2", ls=":")
    _arrow(ax, x, vs2, "C3", lw=2.2)
    _arrow(ax, mu, rec_g, "C4", lw=1.0, ls="--")
    ax.axhline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.text(x[0] / 2, -0.12, r"$x - \mu$", ha="center", color="C0", fontsize=11)
    ax.text(x[0] + 0.05, residual / 2, r"$\varepsilon(x) = \tilde x - x$", color="C2", fontsize=11)
    ax.set(xlabel=r"along $x - \mu$ (what the token already has)",
           ylabel="along the residual\n(what the SAE adds)",
           title="VS2 helps when x - mu carries the class", xticks=[], yticks=[])
    allp = np.stack(list(pts.values()))
    ax.set(xlim=(allp[:, 0].min() - 0.3, allp[:, 0].max() + 0.3), ylim=(allp[:, 1].min() - 0.3,
                                                                          allp[:, 1].max() + 0.3))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig, pts


# The diagrams the book draws (name -> function returning a Figure); `save_book_figures` and
# `vs2mini.figures` write them, and the method page embeds the SVGs.
DIAGRAMS = {
    "pipeline": pipeline_diagram,
    "centroid_steering": lambda: centroid_steering()[0],
    "vs2pp": lambda: vs2pp_diagram()[0],
    "fvu_gate": lambda: gate_diagram()[0],
    "pass": lambda: pass_diagram()[0],
    "when_vs2_helps": lambda: when_plane()[0],
}


def save_book_figures(outdir, formats=("svg",)) -> list:
    """Write the book's diagrams (`DIAGRAMS`, e.g. pipeline.svg) to `outdir`; returns the paths.
    Run `python -c "from vs2mini.teach import diagrams; diagrams.save_book_figures('book/figures')"` after changing them."""
    from pathlib import Path

    from ..disk import save_figure
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "vs2mini"          # stable ids: the committed SVGs change only with the drawing
    paths = []
    for name, draw in DIAGRAMS.items():
        fig = draw()
        for fmt in formats:
            path = outdir / f"{name}.{fmt}"
            save_figure(fig, path, metadata={"Date": None} if fmt == "svg" else None, bbox_inches="tight", dpi=150)
            paths.append(path)
        plt.close(fig)
    return paths
