"""Interactive explorers (ipywidgets) with a static fallback for the rendered book."""
from __future__ import annotations

import matplotlib.pyplot as plt

from . import plots, steer


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
    g = W.FloatSlider(value=1.5, min=gamma[0], max=gamma[1], step=0.1, description="gamma")
    l = W.FloatSlider(value=2.1, min=lam[0], max=lam[1], step=0.1, description="lambda")
    out = W.Output()

    def update(_=None):
        steered = steer.vs2(x, sae, g.value, l.value)
        acc, pc = setup.accuracy(steered), setup.per_class(steered)
        with out:
            out.clear_output(wait=True)
            print(f"zero-shot {base_acc:.2f}%  ->  VS2 {acc:.2f}%  ({acc - base_acc:+.2f})"
                  + ("" if setup.real else "   [smoke profile: NOT A REAL RESULT]"))
            fig = plots.class_gains(base_pc, pc, setup.classnames, top=top, real=setup.real,
                                    title=f"per-class change, gamma={g.value:.1f}, lambda={l.value:.1f}")
            display(fig)
            plt.close(fig)

    g.observe(update, "value")
    l.observe(update, "value")
    update()
    return W.VBox([W.HBox([g, l]), out])


def static_explorer(setup, sae, gammas=(1.0, 1.5, 2.0, 2.5, 3.0), lams=(0.5, 1.0, 2.1, 3.0, 5.0)):
    """What the explorer shows, as one figure: the gamma-lambda grid of gains over zero-shot."""
    grid = setup.sweep_vs2(sae, gammas, lams)
    return plots.heatmap(grid, gammas, lams, baseline=setup.accuracy(setup.test.cls),
                         title="VS2 gain over zero-shot", real=setup.real)
