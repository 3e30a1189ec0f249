"""A non-editable install (what the notebooks' Colab cell does) must carry the offline models' configs and the toy
CLIP's weights."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_smoke_model_config(tmp_path):
    src = tmp_path / "src"            # build from a clean copy: no stale build/ folder can hide a missing file
    shutil.copytree(ROOT / "vs2mini", src / "vs2mini", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(src)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("vs2mini-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "vs2mini/clip/model_configs/vs2mini-tiny.json" in names
    assert "vs2mini/clip/model_configs/vs2mini-toyclip.json" in names
    assert {"vs2mini/clip/toy_weights/vs2mini-toyclip.safetensors", "vs2mini/clip/toy_weights/vs2mini-toyclip.json"} <= set(names)
    assert "vs2mini/method/sae.py" in names
    for wing in ("method", "data", "clip", "tables", "teach"):          # every subpackage ships
        assert f"vs2mini/{wing}/__init__.py" in names
