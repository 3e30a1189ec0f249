"""Figures: toy-profile figures carry the NOT-A-REAL-RESULT stamp, real ones do not."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vs2mini.teach import plots  # noqa: E402


def texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def test_stamp_only_when_not_real():
    S = torch.eye(3)
    real = plots.similarity_heatmap(S, ["a", "b", "c"], real=True)
    fake = plots.similarity_heatmap(S, ["a", "b", "c"], real=False)
    assert plots.TOY_STAMP not in texts(real)
    assert plots.TOY_STAMP in texts(fake)
    assert "not a real result" in fake._suptitle.get_text()
    plt.close("all")


def test_neighbour_purity_labels_and_stamp():
    purity = torch.tensor([0.0, 0.5, 1.0, 1.0])
    fig = plots.neighbour_purity(purity, torch.tensor([1.0, 1.0, 0.0, 0.5]), n_neighbours=50, real=False)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "fraction of the 50 neighbours"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "true-label purity (oracle view)", "pseudo-label agreement (what VS2++ sees)"]
    assert plots.TOY_STAMP in texts(fig)
    plt.close("all")


def test_heatmap_subtracts_baseline():
    grid = torch.tensor([[10.0, 12.0], [11.0, 9.0]])
    fig = plots.heatmap(grid, [1.0, 1.5], [1.0, 2.0], baseline=10.0)
    annotations = sorted(t.get_text() for t in fig.axes[0].texts)
    assert annotations == sorted(["0.0", "2.0", "1.0", "-1.0"])
    plt.close("all")


def test_display_names_are_readable():
    assert plots.display_name("SAE^{F+g}_REC") == "SAE rec. ×γ"
    assert plots.display_name("VS2") == "VS2"
    assert plots.display_name("SAE^{X}_REC") == "SAE rec. X"
    for key in ("CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "VS2 + FVU gate", "VS2++ (pseudo)"):
        assert not set("^{}_") & set(plots.display_name(key)), key


def test_method_bars_use_display_names():
    from vs2mini.tables.main import Row
    fig = plots.method_bars([Row("CLIP zero-shot", 50.0, 0.0), Row("SAE^{F+g}_REC", 52.0, 2.0, paper=62.69)])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["CLIP zero-shot", "SAE rec. ×γ"]
    plt.close("all")


def test_centroid_steering_draws_proposition_3_1():
    alpha = 1.05
    fig, p = plots.centroid_steering(alpha)
    expected = p["x"] + alpha * (p["x"] - p["b_pre"]) + alpha * (p["x_tilde"] - p["x"])
    assert abs(p["steered"] - expected).max() < 1e-12
    x0, x1 = fig.axes[0].get_xlim()
    assert x0 < p["steered"][0] < x1, "the steered point is inside the axes"
    plt.close("all")


def test_pipeline_diagram_stages_in_order():
    fig = plots.pipeline_diagram()
    shown = [t.get_text() for t in fig.axes[0].texts]
    order = [shown.index(label) for label, _ in plots.PIPELINE_STAGES]
    assert order == sorted(order)
    assert [s[0].split("\n")[0] for s in plots.PIPELINE_STAGES][:3] == ["image", "ViT image", "CLS token x"]
    plt.close("all")


def test_book_figures_are_current(tmp_path):
    """The committed SVGs are what save_book_figures draws now (re-run it after changing a figure)."""
    from pathlib import Path
    book = Path(__file__).resolve().parents[2] / "book" / "figures"
    for path in plots.save_book_figures(tmp_path):
        assert (book / path.name).exists(), f"book/figures/{path.name} missing: run plots.save_book_figures"


def test_stamp_covers_no_axes_or_labels():
    """The toy stamp sits in the figure margin: its box overlaps no axes (with its ticks, labels and title)."""
    figs = [plots.similarity_heatmap(torch.eye(3), ["a", "b", "c"], real=False),
            plots.neighbour_purity(torch.tensor([0.0, 0.5, 1.0]), n_neighbours=50, real=False),
            plots.heatmap(torch.tensor([[10.0, 12.0], [11.0, 9.0]]), [1.0, 1.5], [1.0, 2.0], baseline=10.0,
                          real=False)]
    for fig in figs:
        renderer = fig.canvas.get_renderer()
        stamp = next(t for t in fig.texts if t.get_text() == plots.TOY_STAMP).get_window_extent(renderer)
        for ax in fig.axes:
            assert not stamp.overlaps(ax.get_tightbbox(renderer)), ax.get_title()
    plt.close("all")
