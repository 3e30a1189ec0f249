"""`glue(name, value)`: myst-nb's glue where it is installed (the book build), a no-op elsewhere (Colab, a plain
Jupyter), so a notebook's prose can cite computed numbers ({glue:text}`name`) without typing them."""
from __future__ import annotations


def glue(name: str, value, display: bool = False) -> None:
    """Record `value` under `name` for the page's {glue} roles; nothing happens without myst-nb."""
    try:
        from myst_nb import glue as _glue
    except ImportError:         # Colab / plain Jupyter: the numbers are printed by the cells anyway
        return
    _glue(name, value, display=display)
