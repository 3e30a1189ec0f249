"""Every notebook keeps the book's teaching contract and is committed with outputs stripped.

Teaching notebooks (01-06) build each piece by hand in cells tagged `from-scratch` (they may define small
functions, used only there) and check it against the package; everything else calls vs2mini. Each ends with an
"Exercise" section: a stub cell (tag `exercise`) that runs as is and calls a check function of
`vs2mini.exercises`, and a solution whose input is folded and whose output is removed from the page.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from vs2mini.teach.notebook import COLAB_CELL

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# every notebook but the table runner (08) builds a piece by hand; every notebook has an exercise
TEACHING = [p for p in NOTEBOOKS if not p.name.startswith("08")]
FORBIDDEN = ("SPEC", "SAE_ANCHORS", "shared/")


def cells(path: Path, kind: str = "code"):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == kind]


def tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def python(src: str) -> ast.Module:
    """A code cell as Python (IPython magics dropped)."""
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines()))


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.add(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(toc)
    return found | {toc["root"]}


def test_every_notebook_is_in_the_toc():
    assert len(TEACHING) >= 6
    files = toc_files()
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.stem}" not in files]
    assert not missing, f"add to _toc.yml: {missing}"
    assert yaml.safe_load((ROOT / "_toc.yml").read_text())["root"] == "book/intro"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_hygiene(path):
    nb = nbformat.read(path, as_version=4)
    code = cells(path)
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks with outputs stripped"
    assert code[0].source == COLAB_CELL, "first cell: vs2mini.teach.notebook.COLAB_CELL (python -m vs2mini.teach.notebook FILE)"
    assert nb.metadata.get("accelerator") == "GPU", "Colab should open the notebook on a GPU runtime"
    for c in nb.cells:
        for word in FORBIDDEN:
            assert word not in c.source, f"{word!r} refers to something outside the repository"
    long = [line for c in code for line in c.source.splitlines() if len(line) > 88]
    assert not long, f"code lines over 88 characters scroll sideways on the page: {long[:3]}"


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_teaching_contract(path):
    code = cells(path)
    text = "\n".join(c.source for c in cells(path, "markdown"))
    for needle in ("Learning goals", "Prerequisites", "Time"):
        assert needle in text, needle
    assert re.search(r"\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", text), "the idea with its equation (LaTeX math)"
    assert any("plots." in c.source or "widgets." in c.source for c in code), "at least one figure"

    scratch = [c for c in code if "from-scratch" in tags(c)]
    assert scratch, "build a piece by hand in a cell tagged from-scratch"
    assert any("assert" in c.source for c in scratch), "check the hand-built piece against the package"

    assert re.search(r"^#{2,3} Exercise", text, re.M), "an '## Exercise' heading"
    stubs = [c for c in code if "exercise" in tags(c)]
    assert stubs and all("answer = None" in c.source and "exercises.check_" in c.source for c in stubs)
    solutions = [c for c in code if c.source.startswith("# Solution")]
    assert solutions and all({"hide-input", "remove-output", "solution"} <= tags(c) for c in solutions), \
        "solutions: input folded, output removed"
    assert code.index(stubs[0]) < code.index(solutions[0])


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_hand_built_code_stays_in_from_scratch_cells(path):
    """Functions may be defined only in from-scratch cells and are called only there: past those cells the
    notebook uses the package, never a copy of it."""
    code = cells(path)
    defined = set()
    for c in code:
        tree = python(c.source)
        defs = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if "from-scratch" in tags(c):
            defined |= defs
        else:
            assert not defs, f"define functions only in from-scratch cells: {defs}"
    for c in code:
        if "from-scratch" in tags(c):
            continue
        tree = python(c.source)
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not called & defined, f"hand-built {called & defined} used outside from-scratch cells"


@pytest.mark.parametrize("path", [p for p in TEACHING if "steering_explorer" in p.read_text()], ids=lambda p: p.stem)
def test_widget_only_where_a_kernel_runs(path):
    widget = [c for c in cells(path) if "steering_explorer" in c.source]
    assert widget and all("remove-output" in tags(c) for c in widget), "a dead slider on the static page misleads"


def test_book_pages_and_readme_are_self_contained():
    pages = sorted((ROOT / "book").glob("*.md")) + [ROOT / "README.md"]
    for page in pages:
        text = page.read_text()
        for word in FORBIDDEN:
            assert word not in text, f"{page.name} mentions {word!r}: cite the paper or the method page instead"


def test_book_figures_referenced_from_pages_exist():
    for page in sorted((ROOT / "book").glob("*.md")):
        for ref in re.findall(r"```\{figure\} (\S+)", page.read_text()):
            assert (page.parent / ref).exists(), f"{page.name}: {ref} missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_contract(path):
    """Every notebook: an Exercise heading that states its time and difficulty, a stub `answer = None` with a
    check, and a folded solution (input hidden, output removed) after it that calls the same check."""
    nb = nbformat.read(path, as_version=4)
    heads = [c for c in nb.cells if c.cell_type == "markdown" and re.search(r"^## Exercise", c.source, re.M)]
    assert heads, "an '## Exercise' heading"
    for h in heads:
        assert re.search(r"About \d+ minutes", h.source) and "difficulty:" in h.source, h.source[:80]
    code = cells(path)
    stubs = [c for c in code if "exercise" in tags(c)]
    assert stubs and all("answer = None" in c.source and "exercises.check_" in c.source for c in stubs)
    for stub in stubs:
        check = re.search(r"exercises\.(check_\w+)", stub.source).group(1)
        later = code[code.index(stub) + 1:]
        sol = next(c for c in later if c.source.startswith("# Solution"))
        assert {"hide-input", "remove-output"} <= tags(sol) and check in sol.source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_fit_the_column(path):
    """No banner lines in outputs (each page has one callout at the top), and tables as DataFrames or Markdown,
    never wide text (the test executes nothing: notebooks are committed without outputs)."""
    code = "\n".join(c.source for c in cells(path))
    assert "print(setup.banner)" not in code, "the page's callout says it once; no banner in outputs"
    assert ".to_string(" not in code and ".table()" not in code, "display a DataFrame (plots.show_table)"
    first = nbformat.read(path, as_version=4).cells[0].source
    callout = ":::{admonition} Toy numbers on this page\n:class: note"
    assert first.count(":::{admonition}") == 1 and callout in first, "one titled callout"
    assert first.index(callout) < first.index("**Learning goals**"), "the callout at the top of the page"
    text = "\n".join(c.source for c in cells(path, "markdown"))
    fences = re.findall(r"```(?:bash|python)?\n(.*?)```", text, re.S)
    wide = [line for f in fences for line in f.splitlines() if len(line) > 88]
    assert not wide, f"command lines over 88 characters are cut at the column edge: {wide[:2]}"
