"""Every figure of the book as files, for slides: `python -m vs2mini.teach.figures --out DIR` (or `figures(DIR)`).

The diagrams (`diagrams.DIAGRAMS`) need no data. The data figures are the ones the notebooks draw, recomputed here with
the same package functions on the profile's set-up (offline: the toy model, and each figure carries its stamp)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..disk import save_figure  # noqa: E402
from . import diagrams, plots  # noqa: E402


def _save(fig, path: Path, fmt: str) -> Path:
    """Through the one writer (vs2mini.disk): a unique temporary name, then os.replace; one-line disk errors."""
    return save_figure(fig, path, format=fmt, bbox_inches="tight", dpi=150,
                       metadata={"Date": None} if fmt == "svg" else None)


def data_figures(profile: str | None = None) -> dict:
    """The notebooks' data figures, name -> Figure, on the profile's set-up and SAE."""

    from ..method import metrics, retrieval, steer
    from ..pipeline import load_setup
    from .widgets import static_explorer
    setup = load_setup(profile)
    sae, hist = setup.train_sae(progress=False)
    x = setup.test.cls.to(setup.clip.device)
    real = setup.real
    logits = setup.logits(x)
    labels = setup.test.labels
    pc = metrics.per_class_accuracy(logits, labels, len(setup.classnames))
    wrong = (logits.argmax(1) != labels).nonzero().flatten()[:8].tolist()
    names = setup.classnames
    pred = logits.argmax(1)
    figs = {
        "01_per_class_top1": plots.per_class_bars(pc, names, title="CLIP zero-shot: per-class top-1",
                                                  top=10 if len(names) > 20 else None, real=real),
        "01_misclassified": plots.image_grid(setup.test_set, wrong, real=real,
                                             titles=[f"{names[labels[i]]}\n-> {names[pred[i]]}" for i in wrong],
                                             title="misclassified test images (true -> predicted)"),
        "02_training_history": plots.training_history(hist, real=real),
    }
    gammas, lams = [1.0, 1.25, 1.5, 2.0, 3.0], [0.5, 1.0, 2.0, 2.1, 4.0]
    figs["03_gamma_lambda_gain"] = plots.heatmap(setup.sweep_vs2(sae, gammas, lams), gammas, lams,
                                                 baseline=setup.accuracy(x),
                                                 title="VS2 gain over zero-shot (points)", real=real)
    steered = steer.vs2(x, sae, setup.profile.steer.gamma, setup.profile.steer.lam)
    figs["03_class_gains"] = plots.class_gains(setup.per_class(x), setup.per_class(steered), names, top=8,
                                               title="VS2 vs. zero-shot: per-class change", real=real)
    x_train = setup.train.cls.to(setup.clip.device)
    mu = x_train.mean(0)
    fvu_train = steer.per_sample_fvu(x_train, sae, mu)
    figs["03_fvu_gate"] = plots.fvu_histogram(fvu_train, steer.per_sample_fvu(x, sae, mu),
                                              tau=steer.fvu_threshold(fvu_train, 0.9), real=real)
    figs["03_alpha_curve"] = static_explorer(setup, sae)
    n = min(setup.profile.steer.n_neighbours, len(setup.train.labels))
    _, nn_idx = retrieval.knn(setup.test.emb.to(x.device), setup.train.emb.to(x.device), n)
    nbr_true = setup.train.labels[nn_idx.cpu()]
    purity = (nbr_true == labels[:, None]).float().mean(1)
    figs["05_neighbour_purity"] = plots.neighbour_purity(purity, None, n, real=real)
    return figs


def figures(outdir, profile: str | None = None, formats=("svg", "png"), data: bool = True) -> list[Path]:
    """Write every diagram and (with `data`) every data figure to `outdir` in each of `formats`; returns the paths.
    Checks its arguments before any work."""
    formats = tuple(formats)
    bad = [f for f in formats if f not in ("svg", "png", "pdf")]
    if bad or not formats:
        raise ValueError(f"formats must be among svg, png, pdf; got {list(formats)}")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--out {outdir}: not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "vs2mini"
    paths = []
    drawn = {f"diagram_{name}": draw for name, draw in diagrams.DIAGRAMS.items()}
    for name, draw in drawn.items():
        fig = draw()
        paths += [_save(fig, outdir / f"{name}.{fmt}", fmt) for fmt in formats]
        plt.close(fig)
    if data:
        for name, fig in data_figures(profile).items():
            paths += [_save(fig, outdir / f"{name}.{fmt}", fmt) for fmt in formats]
            plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m vs2mini.teach.figures --out DIR [--profile P] [--diagrams-only]`."""
    ap = argparse.ArgumentParser(prog="python -m vs2mini.teach.figures",
                                 description="write every figure of the book as SVG and PNG (for slides)")
    ap.add_argument("--out", dest="outdir", type=Path, required=True, help="folder for the figures")
    ap.add_argument("--profile", help="profile of the data figures (default: $VS2MINI_PROFILE, else toy)")
    ap.add_argument("--diagrams-only", action="store_true", help="only the diagrams (no data, seconds)")
    args = ap.parse_args(argv)
    try:
        paths = figures(args.outdir, profile=args.profile, data=not args.diagrams_only)
    except (ValueError, OSError, RuntimeError) as e:     # one line, no traceback, as the CLI does
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(paths)} files in {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
