"""Faults around the toy CLIP's weights: pretrain-toy never writes into the package or over a file without --force;
the loader checks the shipped file against the checksum in the code and turns every malformed sidecar or weights file
into one line that names the file and how to restore it."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from vs2mini.clip import pretrain as trainer
from vs2mini.clip import toyclip as pretrain
from vs2mini.cli import main


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_file_matches_the_checksum_in_the_code():
    assert _sha(pretrain.WEIGHTS_FILE) == pretrain.TOY_WEIGHTS_SHA256
    assert json.loads(pretrain.META_FILE.read_text())["sha256"] == pretrain.TOY_WEIGHTS_SHA256


@pytest.fixture
def copy(tmp_path):
    """A copy of the shipped weights and sidecar outside the package (a 'rebuilt' file: checked by its sidecar)."""
    w = tmp_path / "w.safetensors"
    shutil.copy(pretrain.WEIGHTS_FILE, w)
    shutil.copy(pretrain.META_FILE, w.with_suffix(".json"))
    return w


@pytest.mark.parametrize("sidecar", ["[1, 2]", "{}", '{"sha256": null}', '{"sha256": 5}', "not json", '"abc"', ""])
def test_malformed_sidecar_is_one_line_naming_the_file(copy, sidecar):
    meta = copy.with_suffix(".json")
    meta.write_text(sidecar)
    with pytest.raises(pretrain.ToyWeightsError) as e:
        pretrain.load_toy_weights(pretrain.build_model()[0], copy)
    msg = str(e.value)
    assert "\n" not in msg and str(meta) in msg and "pretrain-toy" in msg


def test_garbage_weights_with_a_matching_sidecar_is_one_line(copy):
    copy.write_bytes(b"\xff" * 64)
    meta = copy.with_suffix(".json")
    meta.write_text(json.dumps({"sha256": _sha(copy)}))
    with pytest.raises(pretrain.ToyWeightsError) as e:
        pretrain.load_toy_weights(pretrain.build_model()[0], copy)
    assert "\n" not in str(e.value) and str(copy) in str(e.value) and "pretrain-toy" in str(e.value)


def test_shipped_file_replaced_together_with_its_sidecar_is_refused(tmp_path, monkeypatch):
    """A file and its sidecar swapped together (e.g. by an old pretrain-toy) pass the sidecar check; the checksum
    in the code does not."""
    fake_dir = tmp_path / "toy_weights"
    fake_dir.mkdir()
    w = fake_dir / pretrain.WEIGHTS_FILE.name
    w.write_bytes(pretrain.WEIGHTS_FILE.read_bytes()[:-1] + b" ")
    w.with_suffix(".json").write_text(json.dumps({"sha256": _sha(w)}))
    monkeypatch.setattr(pretrain, "WEIGHTS_FILE", w)
    with pytest.raises(pretrain.ToyWeightsError, match="reinstall") as e:
        pretrain.load_toy_weights(pretrain.build_model()[0], w)
    assert "\n" not in str(e.value)


def test_rebuilt_file_is_selected_by_the_environment(copy, monkeypatch):
    monkeypatch.setenv(pretrain.TOY_WEIGHTS_ENV, str(copy))
    assert pretrain.toy_weights_path() == copy
    assert pretrain.load_toy_weights(pretrain.build_model()[0]) == pretrain.TOY_WEIGHTS_SHA256


@pytest.fixture
def cheap_pretraining(monkeypatch):
    """pretrain-toy's CLI path without the 2-minute training: an untrained model, a fixed accuracy."""
    calls = []

    def fake(config, progress=True):
        calls.append(config)
        return pretrain.build_model(len(calls))[0], {"config": {"steps": config.steps}, "seconds": 0.0,
                                                     "cpu_seconds": 0.0, "loss": [1.0], "steps": 1,
                                                     "heldout": [(1, 1.0)]}     # pretrain_toy_clip's history
    monkeypatch.setattr(trainer, "pretrain_toy_clip", fake)
    monkeypatch.setattr(trainer, "zero_shot_accuracy", lambda *a, **k: 4.2)
    return calls


def test_pretrain_toy_writes_a_user_path_never_the_package(tmp_path, monkeypatch, capsys, cheap_pretraining):
    before = _sha(pretrain.WEIGHTS_FILE), _sha(pretrain.META_FILE)
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain-toy", "--steps", "1", "--quiet"]) == 0
    out = tmp_path / pretrain.DEFAULT_OUT
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert (_sha(pretrain.WEIGHTS_FILE), _sha(pretrain.META_FILE)) == before
    first = out.read_bytes()
    # a second run without --force stops before training and leaves the file alone
    assert main(["pretrain-toy", "--steps", "1", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err and len(cheap_pretraining) == 1
    assert out.read_bytes() == first
    assert main(["pretrain-toy", "--steps", "1", "--quiet", "--force"]) == 0
    assert out.read_bytes() != first                                   # another seed: another file
    # into the package only with --force (and then it says to update the code's checksum)
    assert main(["pretrain-toy", "--steps", "1", "--quiet", "--out", str(pretrain.WEIGHTS_FILE)]) == 2
    assert "inside the installed package" in capsys.readouterr().err
    assert (_sha(pretrain.WEIGHTS_FILE), _sha(pretrain.META_FILE)) == before


def test_weights_are_claimed_at_write_time(tmp_path):
    """A file that appeared while pretraining ran (a concurrent run) is not replaced."""
    from vs2mini.disk import OutputExists
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"the other run's file")
    with pytest.raises(OutputExists):
        pretrain.save_toy_weights(pretrain.build_model()[0], {}, out, exclusive=True)
    assert out.read_bytes() == b"the other run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]       # no temporary left
