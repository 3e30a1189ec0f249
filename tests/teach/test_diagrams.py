"""The book's diagrams, drawn without data (vs2mini/teach/diagrams.py): each draws what its equation says
(Proposition 3.1, the VS2++ contrast, the gate's quantile, PASS's pull, the when-VS2-helps plane), and the committed
SVGs are current."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vs2mini.teach import diagrams  # noqa: E402


def test_centroid_steering_draws_proposition_3_1():
    alpha = 1.05
    fig, p = diagrams.centroid_steering(alpha)
    expected = p["x"] + alpha * (p["x"] - p["b_pre"]) + alpha * (p["x_tilde"] - p["x"])
    assert abs(p["steered"] - expected).max() < 1e-12
    x0, x1 = fig.axes[0].get_xlim()
    assert x0 < p["steered"][0] < x1, "the steered point is inside the axes"
    plt.close("all")


def test_pipeline_diagram_stages_in_order():
    fig = diagrams.pipeline_diagram()
    shown = [t.get_text() for t in fig.axes[0].texts]
    order = [shown.index(label) for label, _ in diagrams.PIPELINE_STAGES]
    assert order == sorted(order)
    assert [s[0].split("\n")[0] for s in diagrams.PIPELINE_STAGES][:3] == ["image", "ViT image", "CLS token x"]
    plt.close("all")


def test_book_figures_are_current(tmp_path):
    """The committed SVGs are what save_book_figures draws now (re-run it after changing a figure)."""
    from pathlib import Path
    book = Path(__file__).resolve().parents[2] / "book" / "figures"
    for path in diagrams.save_book_figures(tmp_path):
        assert (book / path.name).exists(), f"book/figures/{path.name} missing: run diagrams.save_book_figures"


def test_vs2pp_diagram_contrast_vector():
    fig, p = diagrams.vs2pp_diagram()
    assert abs(p["cbar_pos"] - p["pos"].mean(0)).max() < 1e-12 and abs(p["cbar_neg"] - p["neg"].mean(0)).max() < 1e-12
    step, contrast = p["steered"] - p["query"], p["cbar_pos"] - p["cbar_neg"]
    assert abs(step[0] * contrast[1] - step[1] * contrast[0]) < 1e-12 and step @ contrast > 0   # same direction
    plt.close("all")


def test_gate_diagram_threshold_is_the_quantile():
    fig, tau = diagrams.gate_diagram(q=0.9)
    ax = fig.axes[0]
    green = sum(p.get_height() for p in ax.patches[: len(ax.patches) // 2])
    total = sum(p.get_height() for p in ax.patches)
    assert 0.88 < green / total < 0.92            # the steered share is q
    assert any(abs(l.get_xdata()[0] - tau) < 1e-12 for l in ax.lines)
    plt.close("all")


def test_pass_diagram_pulls_codes_to_class_means():
    fig, p = diagrams.pass_diagram(pull=0.6)
    before = ((p["codes"] - p["means"][p["labels"]]) ** 2).sum(1)
    after = ((p["pulled"] - p["means"][p["labels"]]) ** 2).sum(1)
    assert (abs(after - 0.16 * before) < 1e-9).all()      # (1 - pull)^2 of the squared distance
    plt.close("all")


def test_when_plane_rows_follow_the_closed_form():
    alpha, gamma = 1.05, 1.5
    fig, p = diagrams.when_plane(alpha=alpha, gamma=gamma)
    x, xt, mu = p["x"], p["x_tilde"], p["mu"]
    assert abs(p["vs2"] - (x + alpha * (x - mu) + alpha * (xt - x))).max() < 1e-12
    assert abs(p["rec_gamma"] - gamma * xt).max() < 1e-12
    assert abs(x[1]) < 1e-12                                 # x - mu spans the horizontal axis
    plt.close("all")
