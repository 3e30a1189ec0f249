"""The first cell of every notebook: install vs2mini on Colab, pick the device and the profile, and say which."""
from __future__ import annotations

import os
import re

import torch

from ..clip.models import hub_reachable
from ..config import DEFAULT_PROFILE, PROFILE_ENV, get_profile

# The repository, written once for the package (tests/test_notebook_setup.py checks it against _config.yml's
# repository.url and pyproject.toml's URLs, which jupyter-book and pip read).
REPO = "https://github.com/vs2mini/vs2mini"
REF_ENV = "VS2MINI_REF"       # the commit the book is built from (.github/workflows/book.yml sets it to github.sha)
DEFAULT_REF = "main"          # a local build and the committed notebooks: main always exists


def book_ref() -> str:
    """The git ref the Colab cells and launch links point at: $VS2MINI_REF if set, else `main`."""
    ref = os.environ.get(REF_ENV) or DEFAULT_REF
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._/\-]*", ref) or ".." in ref:
        raise ValueError(f"${REF_ENV}={ref!r} is not a git branch, tag or commit name")
    return ref


def colab_cell(ref: str = DEFAULT_REF, repo: str = REPO) -> str:
    """The first code cell of every notebook. On Colab it installs vs2mini at `ref` WITHOUT extras: Colab already
    has torch, ipywidgets 7 and ipykernel. The runtime's torch, torchvision and ipywidgets are passed to pip pinned
    at their installed versions, so pip never replaces them (a pip constraint or a dependency that wants another
    torch fails the install instead of pulling gigabytes of CUDA wheels over Colab's). Colab renders core ipywidgets
    without its custom widget manager (that is for third-party widget libraries), so none is switched on.
    A failed install stops the notebook with one line that says what to do."""
    return f"""\
# Set-up. On Colab: install vs2mini and keep Colab's torch. Elsewhere: nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("vs2mini") is None:
    ref = "{ref}"   # main, or the page's commit
    url = "git+{repo}@" + ref
    from importlib.metadata import version   # pip must choose around Colab's own:
    keep = [f"{{d}}=={{version(d)}}" for d in ("torch", "torchvision", "ipywidgets")
            if importlib.util.find_spec(d)]
    pip = [sys.executable, "-m", "pip", "install", "-q", "vs2mini @ " + url, *keep]
    if subprocess.run(pip).returncode:
        raise SystemExit(f"Installing {{url}} failed (pip says why above): "
                         "check the internet connection or the conflict it names, "
                         "then run this cell again.")
from vs2mini.teach.notebook import start
PROFILE = start()   # full: GPU + internet; lite: CPU + internet; offline otherwise"""


# The committed notebooks carry this cell verbatim (tests/test_notebooks_contract.py checks it).
COLAB_CELL = colab_cell()


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


def prepare(path, ref: str = DEFAULT_REF) -> None:
    """Give the notebook at `path` the book's first cell (colab_cell(ref)) and Colab's GPU metadata, in place."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source = colab_cell(ref)
    nb.metadata["accelerator"] = "GPU"
    nb.metadata.setdefault("colab", {}).update({"gpuType": "T4"})
    nbformat.write(nb, path)


def pin_launch_links(config, ref: str) -> None:
    """Point jupyter-book's launch buttons (repository.branch of `config`, a _config.yml) at `ref`, in place."""
    from pathlib import Path
    path = Path(config)
    text = path.read_text()
    new, n = re.subn(r"(?m)^(repository:\n(?:[ \t]+.*\n|[ \t]*#.*\n)*?[ \t]+branch:[ \t]*)\S+", rf"\g<1>{ref}", text)
    if n != 1:
        raise ValueError(f"{path}: no `branch:` line under `repository:` to pin")
    path.write_text(new)


def main(argv=None) -> None:
    """`python -m vs2mini.teach.notebook [--config _config.yml] NOTEBOOK...`: write the first cell for $VS2MINI_REF
    (default main) into each notebook and, with --config, pin the launch links to the same ref. The committed
    files use main (run it without $VS2MINI_REF, then strip outputs); the book's workflow pins its commit."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m vs2mini.teach.notebook", description=main.__doc__)
    ap.add_argument("--config", help="a jupyter-book _config.yml whose repository.branch is pinned too")
    ap.add_argument("notebooks", nargs="*")
    args = ap.parse_args(argv)
    ref = book_ref()
    for nb in args.notebooks:
        prepare(nb, ref)
    if args.config:
        pin_launch_links(args.config, ref)


if __name__ == "__main__":
    main()
