"""Interactive explorers (ipywidgets) with a static fallback for the rendered book."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..method import metrics, steer
from . import plots


def steering_explorer(setup, sae, gamma=(1.0, 3.0), lam=(0.0, 6.0), top: int = 6):
    """Sliders for gamma and lambda; shows VS2 top-1, the gain over zero-shot and the per-class winners/losers.
    Returns the widget (display it), or None when ipywidgets is not installed."""
    try:
        import ipywidgets as W
        from IPython.display import display
    except ImportError:
        return None
    x = setup.test.cls.to(setup.clip.device)
    base_acc, base_pc = setup.accuracy(x), setup.per_class(x)
    g = W.FloatSlider(value=steer.GAMMA, min=gamma[0], max=gamma[1], step=0.1, description="gamma")
    l = W.FloatSlider(value=steer.LAM, min=lam[0], max=lam[1], step=0.1, description="lambda")
    out = W.Output()

    def update(_=None):
        steered = steer.vs2(x, sae, g.value, l.value)
        acc, pc = setup.accuracy(steered), setup.per_class(steered)
        with out:
            out.clear_output(wait=True)
            print(f"zero-shot {base_acc:.2f}%  ->  VS2 {acc:.2f}%  ({acc - base_acc:+.2f})")
            fig = plots.class_gains(base_pc, pc, setup.classnames, top=top, real=setup.real,
                                    title=f"per-class change, gamma={g.value:.1f}, lambda={l.value:.1f}")
            display(fig)
            plt.close(fig)

    g.observe(update, "value")
    l.observe(update, "value")
    update()
    return W.VBox([W.HBox([g, l]), out])


def static_explorer(setup, sae, alphas=(0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)):
    """For the static page: what the sliders cannot show there. Only alpha = lambda (gamma - 1) matters
    (paper v3 Prop. 3.1), so one curve replaces the grid: top-1 and the share of changed predictions against
    alpha (gamma = 2, lambda = alpha)."""
    x = setup.test.cls.to(setup.clip.device)
    base_logits = setup.logits(x)
    acc, changed = [], []
    for a in alphas:
        logits = setup.logits(steer.vs2(x, sae, 2.0, a))                 # gamma = 2: lambda = alpha
        acc.append(metrics.top1(logits, setup.test.labels))
        changed.append(100 * (logits.argmax(1) != base_logits.argmax(1)).float().mean().item())
    return plots.alpha_curve(list(alphas), acc, changed, baseline=setup.accuracy(x), real=setup.real)
