"""The notebooks' first cell (Colab install) and the quiet offline model build."""
from __future__ import annotations

import logging
import re

import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from vs2mini.teach import notebook
from vs2mini.teach.notebook import COLAB_CELL, colab_cell

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


def installs(cell: str) -> list[str]:
    """The pip requirement the cell installs, rebuilt from its `ref = ...` and `url = ...` lines."""
    ref = re.search(r'^    ref = "([^"]+)"', cell, re.M).group(1)
    base = re.search(r'^    url = "(git\+[^"]+@)" \+ ref$', cell, re.M).group(1)
    return [base + ref]


def test_the_repository_url_is_written_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == notebook.REPO          # jupyter-book's launch buttons read _config.yml
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == urls["Homepage"] == notebook.REPO
    assert notebook.REPO in (ROOT / "CITATION.cff").read_text()


def install_branch(cell: str) -> str:
    """The cell's install code, made to run here (where vs2mini IS importable): its `start()` part cut off."""
    code = cell.split("from vs2mini.teach.notebook import start")[0]
    assert 'if importlib.util.find_spec("vs2mini") is None:' in code
    return code.replace('importlib.util.find_spec("vs2mini") is None', "True")


def test_colab_cell_installs_the_ref_it_is_given():
    assert installs(COLAB_CELL) == [f"git+{notebook.REPO}@main"]            # committed notebooks: main exists
    assert installs(colab_cell(SHA)) == [f"git+{notebook.REPO}@{SHA}"]
    assert installs(colab_cell("main", "file:///tmp/r.git")) == ["git+file:///tmp/r.git@main"]
    assert max(len(line) for line in colab_cell(SHA).splitlines()) <= 88    # a full commit id still fits


def test_book_ref_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(notebook.REF_ENV, raising=False)
    assert notebook.book_ref() == "main"                                    # a local build
    monkeypatch.setenv(notebook.REF_ENV, "")
    assert notebook.book_ref() == "main"
    monkeypatch.setenv(notebook.REF_ENV, SHA)                               # the book's workflow: github.sha
    assert notebook.book_ref() == SHA
    for bad in ("a b", "../x", "-rf", 'x"; import os'):
        monkeypatch.setenv(notebook.REF_ENV, bad)
        with pytest.raises(ValueError, match=notebook.REF_ENV):
            notebook.book_ref()


def test_the_workflow_pins_cells_and_launch_links_to_its_commit(tmp_path, monkeypatch):
    """What .github/workflows/book.yml runs, on copies: every first cell and repository.branch get github.sha."""
    nbs = []
    for src in sorted((ROOT / "notebooks").glob("*.ipynb"))[:2]:
        nbs.append(tmp_path / src.name)
        nbs[-1].write_bytes(src.read_bytes())
    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "_config.yml").read_text())
    monkeypatch.setenv(notebook.REF_ENV, SHA)
    notebook.main(["--config", str(config), *map(str, nbs)])
    for path in nbs:
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert installs(first.source) == [f"git+{notebook.REPO}@{SHA}"]
    pinned = yaml.safe_load(config.read_text())
    assert pinned["repository"]["branch"] == SHA
    assert pinned == {**yaml.safe_load((ROOT / "_config.yml").read_text()), "repository": pinned["repository"]}
    assert pinned["repository"]["url"] == notebook.REPO
    bad = tmp_path / "bad.yml"
    bad.write_text("title: x\n")
    with pytest.raises(ValueError, match="bad.yml.*branch"):
        notebook.pin_launch_links(bad, SHA)


def test_colab_cell_installs_only_what_colab_lacks():
    install = next(line for line in COLAB_CELL.splitlines() if "pip\", \"install" in line)
    assert "[" not in install.replace("[sys.executable", ""), "no extras: they would replace Colab's ipywidgets"
    assert "torch" not in install.split("*keep")[0]             # torch only as `keep`: pinned where it is
    assert "--upgrade" not in COLAB_CELL and "-U" not in COLAB_CELL.split()
    assert "enable_custom_widget_manager" not in COLAB_CELL      # Colab renders core ipywidgets without it
    assert max(len(line) for line in COLAB_CELL.splitlines()) <= 88


def test_the_install_pins_the_runtimes_torch_torchvision_and_ipywidgets(monkeypatch):
    """Run the cell's install branch with pip stubbed: it asks for vs2mini plus each of the three at the version
    installed here (and none that is absent), so pip can only keep them, never replace them."""
    from importlib.metadata import version
    import importlib.util
    asked = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: asked.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    code = install_branch(COLAB_CELL)
    exec(code, {})
    [cmd] = asked
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "-q"] and cmd[5] == f"vs2mini @ git+{notebook.REPO}@main"
    want = [f"{d}=={version(d)}" for d in ("torch", "torchvision", "ipywidgets") if importlib.util.find_spec(d)]
    assert cmd[6:] == want and f"torch=={version('torch')}" in want
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "ipywidgets" else real_find(n, *a))
    exec(code, {})
    assert not any(a.startswith("ipywidgets") for a in asked[1]) and asked[1][6:] == want[:2]   # absent: not named


def test_a_failed_install_stops_with_one_line_that_says_what_to_do(tmp_path):
    """Run the cell's install branch (as where vs2mini is not importable) with a repository that does not exist."""
    cell = colab_cell("main", "file://" + str(tmp_path / "no-such-repo.git"))
    r = subprocess.run([sys.executable, "-I", "-c", install_branch(cell)], capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1"})
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Installing git+file://{tmp_path}/no-such-repo.git@main failed")
    assert "run this cell again" in last and "Traceback" not in r.stderr


def test_offline_model_build_logs_no_random_init_warning(caplog):
    from vs2mini.clip.models import load_clip
    with caplog.at_level(logging.WARNING):
        load_clip("vs2mini-tiny", None, device="cpu")
    assert not [r for r in caplog.records if "No pretrained weights" in r.getMessage()]
    logging.getLogger().warning("No pretrained weights loaded (outside load_clip)")
    assert any("outside load_clip" in r.getMessage() for r in caplog.records), "the filter is removed afterwards"


def test_prepare_sets_the_first_cell_and_gpu_metadata(tmp_path):
    import nbformat
    from vs2mini.teach.notebook import prepare
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                         nbformat.v4.new_code_cell("print('old set-up')"),
                                         nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    prepare(path)
    out = nbformat.read(path, as_version=4)
    assert out.cells[1].source == COLAB_CELL and out.cells[2].source == "x = 1"
    assert out.metadata["accelerator"] == "GPU"
