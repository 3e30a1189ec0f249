"""What produced a result file (vs2mini/provenance.py): the fields, the commit of a git checkout (None outside
one), and `stamp` on each result shape."""
from __future__ import annotations

import platform
import subprocess
from types import SimpleNamespace

import open_clip
import torch

import vs2mini
from vs2mini import provenance as P


def test_provenance_fields():
    p = P.provenance("toy", 3)
    assert set(p) == {"vs2mini", "torch", "open_clip", "python", "profile", "seed", "commit", "units"}
    assert (p["vs2mini"], p["torch"], p["open_clip"]) == (vs2mini.__version__, torch.__version__, open_clip.__version__)
    assert (p["python"], p["profile"], p["seed"], p["units"]) == (platform.python_version(), "toy", 3, "top-1 %")


def test_git_commit_of_a_checkout_and_none_elsewhere(tmp_path):
    assert P.git_commit(tmp_path) is None                                # not a git checkout
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    assert P.git_commit(repo) is None                                    # a repository without a commit
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert P.git_commit(repo) == head and len(head) == 40


def test_stamp_keeps_the_shape(monkeypatch):
    prov = {"profile": "toy"}
    assert P.stamp({"a": 1}, prov=prov) == {"a": 1, "provenance": prov}
    assert P.stamp([{"a": 1}, {"b": 2}], prov=prov) == [{"a": 1, "provenance": prov}, {"b": 2, "provenance": prov}]
    assert P.stamp("text", prov=prov) == "text"
    assert P.stamp({"a": 1}) == {"a": 1}                                  # no profile (pretrain-toy): unchanged
    seen = []
    monkeypatch.setattr(P, "provenance", lambda name, seed: seen.append((name, seed)) or {"p": name})
    assert P.stamp({"a": 1}, SimpleNamespace(name="lite", train=SimpleNamespace(seed=7))) == {"a": 1, "provenance": {"p": "lite"}}
    assert seen == [("lite", 7)]
