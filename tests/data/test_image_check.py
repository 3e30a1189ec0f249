"""Every dataset of a run is checked for readable image files before the first one is encoded: one unreadable
CUB image stops `reproduce --dataset toy,cub200` before the toy dataset is run, naming the file."""
from __future__ import annotations

import pytest

from datasets_fixtures import make_cub
from vs2mini.tables import main as reproduce
from vs2mini.cli import main


@pytest.fixture
def cub_with_a_bad_image(tmp_path, monkeypatch):
    monkeypatch.setenv("VS2MINI_DATA", str(tmp_path / "data"))
    base = make_cub(tmp_path / "data")
    bad = sorted((base / "images").rglob("*.jpg"))[0]
    bad.write_bytes(b"\x00" * 64 + b"not an image")
    return bad


def test_a_bad_image_in_a_later_dataset_stops_the_run_before_encoding(cub_with_a_bad_image, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(reproduce, "run_reproduce", lambda profile, ds, **kw: calls.append(ds))
    assert main(["reproduce", "--profile", "toy", "--quiet", "--dataset", "toy,cub200"]) == 2
    err = capsys.readouterr().err
    assert calls == [] and str(cub_with_a_bad_image) in err and "1 of" in err and err.count("\n") == 1


def test_single_dataset_commands_check_too(cub_with_a_bad_image, monkeypatch, capsys):
    from vs2mini import pipeline
    monkeypatch.setattr(pipeline, "load_setup", lambda *a, **k: pytest.fail("encoding started"))
    assert main(["features", "--profile", "toy", "--quiet", "--dataset", "cub200"]) == 2
    assert str(cub_with_a_bad_image) in capsys.readouterr().err
