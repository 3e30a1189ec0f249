"""`glue` (vs2mini/teach/book_glue.py): Python numbers for myst-nb in the book build, a no-op without myst-nb."""
from __future__ import annotations

import sys

import pytest


def test_glue_hands_myst_nb_python_numbers(monkeypatch):
    """numpy 2 writes np.float64(0.5) as its text repr, which {glue:text}`key:.2f` cannot format (a -W failure)."""
    import numpy as np
    import torch
    import myst_nb

    from vs2mini.teach import book_glue
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.__setitem__(name, value))
    book_glue.glue("a", np.float64(0.5))
    book_glue.glue("b", torch.tensor(2.0))
    book_glue.glue("c", 3)
    assert type(seen["a"]) is float and type(seen["b"]) is float and seen["c"] == 3


def test_glue_is_a_no_op_without_myst_nb(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)                 # `from myst_nb import glue` fails
    from vs2mini.teach import book_glue
    assert book_glue.glue("a", 1.5) is None


def test_glue_keeps_tensors_that_are_not_scalars(monkeypatch):
    import myst_nb
    import torch

    from vs2mini.teach import book_glue
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.__setitem__(name, (value, display)))
    t = torch.tensor([1.0, 2.0])
    book_glue.glue("v", t, display=True)
    assert seen["v"][0] is t and seen["v"][1] is True
    with pytest.raises(KeyError):
        seen["w"]
