"""The steering explorer (vs2mini/teach/widgets.py): what its callback shows is what the package computes for the
sliders' values (no display needed), and the static fallback's curve is VS2 at gamma = 2, lambda = alpha."""
from __future__ import annotations

import re
import sys
from dataclasses import replace

import matplotlib
import pytest
import torch

from vs2mini.clip.features import Features
from vs2mini.method import metrics, steer
from vs2mini.method.sae import TopKSAE
from vs2mini.teach import plots, widgets

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def small(toy_setup):
    """The toy set-up on its first 240 test images, and an SAE that moves predictions (random weights)."""
    t = toy_setup.test
    s = replace(toy_setup, test=Features(t.cls[:240], t.emb[:240], t.labels[:240]))
    return s, TopKSAE(s.train.cls.shape[1], 128, 8, seed=0).eval().requires_grad_(False)


def shown(text: str) -> tuple[float, float]:
    """(zero-shot %, VS2 %) from the explorer's last printed line."""
    zs, vs2 = re.findall(r"zero-shot ([\d.]+)%  ->  VS2 ([\d.]+)%", text)[-1]
    return float(zs), float(vs2)


def test_explorer_shows_what_the_package_computes(small, capsys, monkeypatch):
    pytest.importorskip("ipywidgets")
    s, sae = small
    gains = []
    monkeypatch.setattr(plots, "class_gains", lambda base, pc, *a, **k: gains.append((base, pc)) or
                        matplotlib.figure.Figure())
    box = widgets.steering_explorer(s, sae)
    g, lam = box.children[0].children
    assert (g.value, lam.value) == (steer.GAMMA, steer.LAM)               # the package's defaults
    x = s.test.cls
    want = s.accuracy(steer.vs2(x, sae, steer.GAMMA, steer.LAM))
    assert shown(capsys.readouterr().out) == (round(s.accuracy(x), 2), round(want, 2))
    g.value = 3.0                                                         # a slider move re-runs the callback
    steered = steer.vs2(x, sae, 3.0, steer.LAM)
    zs, acc = shown(capsys.readouterr().out)
    assert acc == round(s.accuracy(steered), 2) and zs == round(s.accuracy(x), 2)
    assert torch.equal(gains[-1][0], s.per_class(x)) and torch.allclose(gains[-1][1], s.per_class(steered))
    assert acc != round(want, 2)                                          # it did recompute


def test_explorer_without_ipywidgets_is_none(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)                  # import fails
    assert widgets.steering_explorer(*small) is None


def test_static_explorer_is_vs2_at_gamma_2_lambda_alpha(small, monkeypatch):
    s, sae = small
    seen = {}
    monkeypatch.setattr(plots, "alpha_curve", lambda alphas, acc, changed, **k: seen.update(
        alphas=alphas, acc=acc, changed=changed, **k))
    widgets.static_explorer(s, sae, alphas=(0.0, 1.0, 3.0))
    x = s.test.cls
    assert seen["alphas"] == [0.0, 1.0, 3.0] and seen["baseline"] == s.accuracy(x)
    for a, acc, changed in zip(seen["alphas"], seen["acc"], seen["changed"]):
        logits = s.logits(steer.vs2(x, sae, 2.0, a))
        assert acc == metrics.top1(logits, s.test.labels)
        assert changed == pytest.approx(100 * (logits.argmax(1) != s.logits(x).argmax(1)).float().mean().item())
    assert seen["changed"][0] == 0.0 and seen["acc"][0] == seen["baseline"]    # alpha = 0: unsteered
