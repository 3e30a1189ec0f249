"""Figures (vs2mini/teach/plots.py): toy-profile figures carry the NOT-A-REAL-RESULT stamp, real ones do not; titles,
legends and tables fit the page (the diagrams drawn without data: tests/teach/test_diagrams.py)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vs2mini.teach import diagrams, plots  # noqa: E402


def texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def test_stamp_only_when_not_real():
    S = torch.eye(3)
    real = plots.similarity_heatmap(S, ["a", "b", "c"], real=True)
    fake = plots.similarity_heatmap(S, ["a", "b", "c"], real=False)
    assert plots.TOY_STAMP not in texts(real)
    assert [t.get_text() for t in fake.texts].count(plots.TOY_STAMP) == 1     # one stamp per figure
    assert fake._suptitle is None or "not a real result" not in fake._suptitle.get_text()
    plots.stamp(fake, False)                                                    # stamping twice adds nothing
    assert [t.get_text() for t in fake.texts].count(plots.TOY_STAMP) == 1
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
    fig = plots.method_bars({"CLIP zero-shot": 0.0, "SAE^{F+g}_REC": 2.0},
                            {"CLIP zero-shot": 61.07, "SAE^{F+g}_REC": 62.69})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CLIP zero-shot", "SAE rec. ×γ"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [0.0, 2.0]          # changes, not absolute top-1
    marks = ax.collections[0].get_offsets()
    assert abs(marks[1][0] - (62.69 - 61.07)) < 1e-9                              # the paper's change
    plt.close("all")


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


def test_titles_readable_and_legends_outside():
    """Titles >= 10 pt on figures no wider than the page (about 9 in), legends outside the data."""
    figs = [draw() for draw in diagrams.DIAGRAMS.values()]
    figs.append(plots.similarity_heatmap(torch.rand(24, 24), [f"class {i}" for i in range(24)], real=False))
    figs.append(plots.alpha_curve([0, 1, 2], [50, 51, 49], [0, 10, 30], baseline=50.0, real=False))
    figs.append(plots.tradeoff([0, 0.5, 2], [0.2, 0.3, 0.4], [50, 50.5, 51], real=False))
    for fig in figs:
        assert fig.get_figwidth() <= 9.6
        for ax in fig.axes:
            if ax.get_title():
                assert ax.title.get_fontsize() >= 10, ax.get_title()
            leg = ax.get_legend()
            if leg is not None:
                renderer = fig.canvas.get_renderer()
                assert not leg.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)), ax.get_title()
    plt.close("all")


def test_similarity_colour_scale_spans_the_data():
    S = 0.5 + 0.5 * torch.rand(24, 24)
    fig = plots.similarity_heatmap(S, [str(i) for i in range(24)], real=True)
    lo, hi = fig.axes[0].collections[0].get_clim()
    assert abs(lo - S.min().item()) < 1e-6 and abs(hi - S.max().item()) < 1e-6
    plt.close("all")


def test_wide_tables_are_split_into_page_wide_parts():
    import pandas as pd
    frame = pd.DataFrame([[1.0] * 14], columns=[f"c{i}" for i in range(14)], index=["row"])
    parts = plots._column_chunks(frame)
    assert [p.shape[1] for p in parts] == [6, 6, 2]
    assert list(pd.concat(parts, axis=1).columns) == list(frame.columns)     # nothing lost, order kept
