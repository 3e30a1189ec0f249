"""The book workflow (.github/workflows/book.yml) cannot run here; check that it is valid YAML and that every
command it runs exists, with options the CLI accepts."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from vs2mini.teach import results_page
from vs2mini.config import PROFILES

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def commands() -> list[list[str]]:
    out = []
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if line.strip():
                    out.append(shlex.split(line))
    return out


def test_triggers_and_jobs():
    wf = workflow()
    on = wf.get("on", wf.get(True))             # YAML 1.1 reads a bare `on` as True
    assert "push" in on and "workflow_dispatch" in on
    assert set(wf["jobs"]) == {"build", "deploy"} and wf["jobs"]["deploy"]["needs"] == "build"
    assert wf["permissions"] == {}                                   # nothing by default ...
    assert wf["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert wf["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}   # ... deploy publishes
    build = wf["jobs"]["build"]
    assert build["env"]["VS2MINI_PROFILE"] == "lite" and "lite" in PROFILES
    uses = [s.get("uses", "") for s in build["steps"]]
    assert any(u.startswith("actions/cache@") for u in uses), "weights and datasets cached between runs"
    cached = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/cache@"))["with"]["path"]
    for var in ("VS2MINI_DATA", "VS2MINI_CACHE", "HF_HOME"):
        assert build["env"][var].split("}}/")[1].startswith(cached + "/"), f"{var} lives in the cached folder"
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"


def test_every_vs2mini_command_and_option_exists():
    runs = [c for c in commands() if c[:3] == ["python", "-m", "vs2mini"]]
    assert runs, "the workflow runs vs2mini"
    for cmd in runs:
        sub, args = cmd[3], cmd[4:]
        help_text = subprocess.run([sys.executable, "-m", "vs2mini", sub, "--help"], capture_output=True,
                                   text=True, cwd=ROOT, check=True).stdout
        for a in args:
            if a.startswith("--"):
                assert a in help_text, f"`vs2mini {sub}` has no option {a}"
        if "--profile" in args:
            assert args[args.index("--profile") + 1] in PROFILES


def test_results_json_goes_where_the_results_page_reads_it():
    rep = next(c for c in commands() if c[:4] == ["python", "-m", "vs2mini", "reproduce"])
    written = Path(rep[rep.index("--json") + 1])
    assert written == Path("book") / results_page.DEFAULT_RESULTS
    assert (ROOT / "book" / "results.md").exists()


def test_book_build_fails_on_warnings_and_installs_from_requirements():
    build = next(c for c in commands() if c[:2] == ["jupyter-book", "build"])
    assert "-W" in build and build[2] == "."
    assert (ROOT / "_config.yml").exists() and (ROOT / "_toc.yml").exists()
    pip = [c for c in commands() if c[:4] == ["python", "-m", "pip", "install"]]
    assert any("-r" in c and (ROOT / c[c.index("-r") + 1]).exists() for c in pip)


def test_checkout_keeps_no_credentials_and_the_book_pins_its_commit():
    build = workflow()["jobs"]["build"]
    checkout = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    assert build["env"]["VS2MINI_REF"] == "${{ github.sha }}"
    pin = next(c for c in commands() if c[:3] == ["python", "-m", "vs2mini.teach.notebook"])
    assert pin[3:5] == ["--config", "_config.yml"]
    assert sorted(pin[5:]) == sorted(f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb"))
    steps = [s.get("run", "") for s in build["steps"]]
    at = lambda text: next(i for i, r in enumerate(steps) if text in r)      # noqa: E731
    assert at("vs2mini.teach.notebook") < at("jupyter-book build")          # pinned before the pages are built
    subprocess.run([sys.executable, "-m", "vs2mini.teach.notebook", "--help"], cwd=ROOT, check=True,
                   capture_output=True)


def test_cache_key_hashes_the_files_that_shape_the_cache():
    """hashFiles of paths that no longer exist hashes nothing: the key would never change (it did after files moved)."""
    import re
    step = next(s for s in workflow()["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    patterns = re.findall(r"'([^']+)'", re.search(r"hashFiles\(([^)]*)\)", step["with"]["key"]).group(1))
    hashed = set()
    for pat in patterns:
        found = set(ROOT.glob(pat))
        assert found, f"hashFiles pattern {pat!r} in book.yml matches no file"
        hashed |= {p.relative_to(ROOT).as_posix() for p in found}
    # what decides the cached weights, datasets and features: the profiles, the dataset code, the encoder code
    for must in ("vs2mini/config.py", "vs2mini/data/archives.py", "vs2mini/clip/features.py",
                 "vs2mini/clip/preprocess.py", "vs2mini/clip/models.py"):
        assert must in hashed, f"the cache key does not hash {must}"
