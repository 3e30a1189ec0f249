"""The first cell of every notebook: install vs2mini on Colab, pick the device and the profile, and say which."""
from __future__ import annotations

import os

import torch

from . import __version__
from .clip import hub_reachable
from .profiles import DEFAULT_PROFILE, PROFILE_ENV, get_profile

REPO = "https://github.com/vs2mini/vs2mini"
# The tag the book was built from: the install in Colab is pinned to the same code as the page the reader opened.
PIN = f"v{__version__}"

# The first code cell of every notebook, verbatim (tests/test_notebooks_contract.py checks it). It installs vs2mini
# without extras: Colab already has torch, ipywidgets and ipykernel, and pip keeps what satisfies the ranges.
# Colab runs ipywidgets 8 only through its custom widget manager, so that is switched on there.
COLAB_CELL = f"""\
# Set-up. On Colab: install vs2mini {PIN} and keep Colab's torch. Elsewhere: nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("vs2mini") is None:
    pin = "vs2mini @ git+{REPO}@{PIN}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", pin], check=True)
if "google.colab" in sys.modules:   # the widget of notebook 3 needs this on Colab
    from google.colab import output
    output.enable_custom_widget_manager()
from vs2mini.notebook import start
PROFILE = start()   # full: GPU + internet; lite: CPU + internet; offline otherwise"""


def choose_profile() -> str:
    """$VS2MINI_PROFILE if set; else `full` on a GPU with internet, `lite` on a CPU with internet, `toy` offline."""
    if os.environ.get(PROFILE_ENV):
        return get_profile(os.environ[PROFILE_ENV]).name
    if not hub_reachable():
        return DEFAULT_PROFILE
    return "full" if torch.cuda.is_available() else "lite"


def start(verbose: bool = True) -> str:
    """Choose the profile, export it (so every later call sees it) and print one line: profile, device, torch.
    No banner: each page says once, in its callout at the top, where its numbers come from."""
    name = choose_profile()
    os.environ[PROFILE_ENV] = name
    if verbose:
        dev = f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU (no GPU found)"
        toy = "" if get_profile(name).real else " (toy model)"
        print(f"vs2mini profile: {name}{toy}   device: {dev}   torch {torch.__version__}")
    return name


def prepare(path) -> None:
    """Give the notebook at `path` the book's first cell (COLAB_CELL) and Colab's GPU metadata, in place.
    Usage: `python -m vs2mini.notebook notebooks/NN_name.ipynb ...` (then commit it with outputs stripped)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source = COLAB_CELL
    nb.metadata["accelerator"] = "GPU"
    nb.metadata.setdefault("colab", {}).update({"gpuType": "T4"})
    nbformat.write(nb, path)


if __name__ == "__main__":
    import sys
    for arg in sys.argv[1:]:
        prepare(arg)
