"""Every notebook keeps the book's teaching contract and is committed with outputs stripped."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def first_code_cell(path: Path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    files = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert len(files) == 7
    assert all(f in toc for f in files), files
    assert yaml.safe_load(toc)["root"] == "book/intro"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_contract(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks with outputs stripped"
    assert "from vs2mini.notebook import start" in code[0].source and "--no-deps" not in code[0].source
    assert code[0].source == first_code_cell(NOTEBOOKS[0]), "the same Colab set-up cell in every notebook"
    for needle in ("Learning goals", "Prerequisites", "Time", "**Exercise.**"):
        assert needle in text, needle
    assert re.search(r"\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", text), "the idea with its equation (LaTeX math)"
    solutions = [c for c in code if c.source.startswith("# Solution")]
    assert len(solutions) >= 1 and all({"hide-input", "solution"} <= set(c.metadata.get("tags", [])) for c in solutions)
    assert any("plots." in c.source for c in code), "at least one figure from vs2mini.plots"
    assert all("def " not in c.source for c in code), "notebooks call vs2mini; they do not define helpers"
