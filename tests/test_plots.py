"""Figures: smoke-profile figures carry the NOT-A-REAL-RESULT stamp, real ones do not."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vs2mini import plots  # noqa: E402


def texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def test_stamp_only_when_not_real():
    S = torch.eye(3)
    real = plots.similarity_heatmap(S, ["a", "b", "c"], real=True)
    fake = plots.similarity_heatmap(S, ["a", "b", "c"], real=False)
    assert plots.SMOKE_STAMP not in texts(real)
    assert plots.SMOKE_STAMP in texts(fake)
    assert "not a real result" in fake._suptitle.get_text()
    plt.close("all")


def test_neighbor_purity_labels_and_stamp():
    purity = torch.tensor([0.0, 0.5, 1.0, 1.0])
    fig = plots.neighbor_purity(purity, torch.tensor([1.0, 1.0, 0.0, 0.5]), n_neighbors=50, real=False)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "fraction of the 50 neighbours"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "true-label purity (oracle view)", "pseudo-label agreement (what VS2++ sees)"]
    assert plots.SMOKE_STAMP in texts(fig)
    plt.close("all")


def test_heatmap_subtracts_baseline():
    grid = torch.tensor([[10.0, 12.0], [11.0, 9.0]])
    fig = plots.heatmap(grid, [1.0, 1.5], [1.0, 2.0], baseline=10.0)
    annotations = sorted(t.get_text() for t in fig.axes[0].texts)
    assert annotations == sorted(["0.0", "2.0", "1.0", "-1.0"])
    plt.close("all")
