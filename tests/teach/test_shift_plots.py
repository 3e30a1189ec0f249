"""The shift grid's figures draw what they are given: one line per row, gains at x = 32 / px, labelled axes."""
import matplotlib
import numpy as np

matplotlib.use("Agg")

from vs2mini.teach import shift_plots  # noqa: E402


def fake_grid():
    res = [32, 16, 8]
    cells = [{"px": px, "method": m, "delta": float(i * j), "se": 0.5, "top1": 50.0}
             for i, m in enumerate(shift_plots.GAIN_ROWS) for j, px in enumerate(res)]
    return {"resolutions": res, "cells": cells}


def test_gain_vs_shift_draws_every_row_at_its_shift():
    fig = shift_plots.gain_vs_shift(fake_grid(), real=True)
    ax = fig.axes[0]
    assert "gain" in ax.get_ylabel() and "resolution" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == len(shift_plots.GAIN_ROWS)
    lines = [l for l in ax.get_lines() if len(l.get_xdata()) == 3]
    vs2 = shift_plots.GAIN_ROWS.index("VS2")
    ys = sorted((tuple(np.round(l.get_ydata(), 6)) for l in lines), key=lambda y: y[-1])
    assert (0.0, float(vs2), 2.0 * vs2) in ys                       # delta = i * j for row i at column j
    xs = {round(float(x)) for l in lines for x in l.get_xdata()}
    assert xs == {1, 2, 4}                                          # 32 / px (plus a small dodge)


def test_sae_rows_plane_places_each_point():
    fig = shift_plots.sae_rows_plane({"VS2": (0.5, 0.5), "SAE^F_REC": (0.0, 1.0)})
    ax = fig.axes[0]
    pts = {tuple(np.round(c.get_offsets()[0], 6)) for c in ax.collections}
    assert pts == {(0.5, 0.5), (0.0, 1.0)}
