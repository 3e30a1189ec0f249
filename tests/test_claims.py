"""Outputs are claimed when they are written, not only checked before the run: a file that appears while a run
works (a second run with the same --out) is never replaced silently, and the computed result is kept."""
from __future__ import annotations

import errno
import os

import pytest

from vs2mini import disk, pipeline
from vs2mini.cli import main
from vs2mini.method.sae import TopKSAE
from vs2mini.method.sae_file import load_sae, read_sae_file, save_sae


@pytest.fixture
def racing_train(monkeypatch):
    """Setup.train_sae that, like a concurrent run finishing first, writes the --out file while 'training'."""
    real = pipeline.Setup.train_sae
    state = {}

    def train(self, *a, **kw):
        sae, hist = real(self, *a, **kw)
        other = TopKSAE(sae.d_in, sae.n_latents, sae.k, seed=123)
        save_sae(other, state["out"], note="the other run")
        return sae, hist
    monkeypatch.setattr(pipeline.Setup, "train_sae", train)
    return state


def test_concurrent_train_sae_never_replaces_the_other_file(tmp_path, capsys, racing_train, toy_setup):
    out = racing_train["out"] = tmp_path / "s.pt"
    assert main(["train-sae", "--profile", "toy", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "saved to" in err
    assert read_sae_file(out)["extra"]["note"] == "the other run"           # the first file is intact
    rescued = [p for p in tmp_path.iterdir() if p != out]
    assert len(rescued) == 1 and str(rescued[0]) in err                       # ours is kept, beside it
    assert read_sae_file(rescued[0])["extra"]["dataset"] == "toy"


def test_train_sae_on_a_full_disk_keeps_the_sae(tmp_path, monkeypatch, capsys, toy_setup):
    out = tmp_path / "s.pt"
    real = disk._write_all

    def full_here(fd, data):                 # only the target's folder is full
        if os.readlink(f"/proc/self/fd/{fd}").startswith(f"{tmp_path}/"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)
    monkeypatch.setattr(disk, "_write_all", full_here)
    rescue = tmp_path.parent / f"rescue-{tmp_path.name}"
    rescue.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(rescue))
    assert main(["train-sae", "--profile", "toy", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no space" in err and "saved to" in err
    rescued = list(rescue.iterdir())
    assert len(rescued) == 1 and load_sae(rescued[0]).k > 0
    assert list(tmp_path.iterdir()) == []
