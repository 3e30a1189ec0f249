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
    assert wf["permissions"]["pages"] == "write"
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
