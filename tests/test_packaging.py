"""A non-editable install (what the notebooks' Colab cell does) must carry the offline models' configs and the toy
CLIP's weights."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_toy_model_config(tmp_path):
    src = tmp_path / "src"            # build from a clean copy: no stale build/ folder can hide a missing file
    shutil.copytree(ROOT / "vs2mini", src / "vs2mini", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
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
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: MIT" in metadata.splitlines()              # SPDX (PEP 639), not the deprecated table
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Project-URL: Repository, https://github.com/vs2mini/vs2mini" in metadata.splitlines()


def _project() -> dict:
    import tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_third_party_import_of_the_package_is_declared():
    """Each top-level module vs2mini imports (at module level or inside a function) comes from a distribution named
    in pyproject.toml's dependencies or extras: a fresh machine gets it, whatever happens to be installed here."""
    import ast
    from importlib.metadata import packages_distributions
    from packaging.requirements import Requirement
    proj = _project()
    declared = {Requirement(r).name.lower().replace("_", "-") for r in proj["dependencies"]}
    declared |= {Requirement(r).name.lower().replace("_", "-")
                 for reqs in proj["optional-dependencies"].values() for r in reqs}
    dists = packages_distributions()
    missing = {}
    for path in sorted((ROOT / "vs2mini").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("vs2mini", "google"):   # google.colab: Colab only
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & declared:
                    missing.setdefault(top, path.name)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_colab_needs_no_extra_and_requirements_installs_them_all():
    from packaging.requirements import Requirement
    proj = _project()
    base = {Requirement(r).name.lower() for r in proj["dependencies"]}
    assert not base & {"ipywidgets", "ipykernel", "jupyter-book", "sphinx", "pytest"}   # Colab keeps its own
    extras = {k: {Requirement(r).name.lower(): Requirement(r).specifier for r in v}
              for k, v in proj["optional-dependencies"].items()}
    assert extras["notebooks"]["ipywidgets"].contains("7.7.1")                         # Colab's ipywidgets
    torch = next(Requirement(r) for r in proj["dependencies"] if r.startswith("torch>"))
    assert not torch.specifier.contains("2.3.1") and torch.specifier.contains("2.4.0")  # 2.4: is_autocast_enabled(dev)
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [ln for ln in lines if ln] == ["-e .[notebooks,test,book]"]
