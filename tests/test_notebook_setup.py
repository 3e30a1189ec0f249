"""The notebooks' first cell (Colab install) and the quiet offline model build."""
from __future__ import annotations

import logging
import re

import vs2mini
from vs2mini.teach.notebook import COLAB_CELL, PIN


def test_colab_cell_is_pinned_to_the_package_version():
    pins = re.findall(r"git\+https://github\.com/vs2mini/vs2mini@([\w.\-]+)", COLAB_CELL)
    assert pins == [f"v{vs2mini.__version__}"] == [PIN]


def test_colab_cell_installs_only_what_colab_lacks():
    install = next(line for line in COLAB_CELL.splitlines() if "git+" in line)
    assert "[" not in install, "no extras: [notebooks] would force ipywidgets 8 and ipykernel"
    assert "torch" not in install.replace("open_clip_torch", "")
    assert "--upgrade" not in COLAB_CELL and "-U" not in COLAB_CELL.split()
    assert "enable_custom_widget_manager()" in COLAB_CELL
    assert max(len(line) for line in COLAB_CELL.splitlines()) <= 88


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
