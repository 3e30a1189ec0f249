"""`glue(name, value)`: myst-nb's glue where it is installed (the book build), a no-op elsewhere (Colab, a plain
Jupyter), so a notebook's prose can cite computed numbers ({glue:text}`name`) without typing them."""
from __future__ import annotations


def glue(name: str, value, display: bool = False) -> None:
    """Record `value` under `name` for the page's {glue} roles; nothing happens without myst-nb. NumPy and torch
    scalars become Python numbers first: myst-nb formats the text repr, and numpy 2's `np.float64(0.5)` is none."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:         # Colab / plain Jupyter: the numbers are printed by the cells anyway
        return
    _glue(name, value, display=display)
