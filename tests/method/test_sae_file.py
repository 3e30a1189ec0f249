"""SAE files: unique temp names, recorded metadata, checksums, NaN/inf refusal, newer-format message, and the
CLI's default path / --force rule (issue 10, points 2 and 3)."""
from __future__ import annotations

import threading

import pytest
import torch

import vs2mini
from vs2mini.cli import default_sae_path, main
from vs2mini.method.sae_file import load_sae, read_sae_file, save_sae
from vs2mini.method.sae import SAE_FORMAT_VERSION, TopKSAE


def _sae(seed: int) -> TopKSAE:
    return TopKSAE(6, 12, 2, seed=seed)


def test_concurrent_saves_to_one_path_never_mix(tmp_path, monkeypatch):
    """Two savers interleaved at the worst moment: each writes its own temp file, so the file on disk is exactly one
    of the two SAEs (the last to rename), never a temp file taken over by the other saver."""
    path = tmp_path / "sae.pt"
    a, b = _sae(1), _sae(2)
    real_save, barrier, tmps = torch.save, threading.Barrier(2), []

    def slow_save(obj, f, *args, **kw):          # both threads have chosen their temp name before either writes
        tmps.append(str(f))
        barrier.wait(timeout=10)
        return real_save(obj, f, *args, **kw)

    monkeypatch.setattr(torch, "save", slow_save)
    errors = []

    def run(sae):
        try:
            save_sae(sae, path)
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors, errors
    assert len(set(tmps)) == 2, tmps                             # distinct temp names
    loaded = load_sae(path)
    assert any(torch.equal(loaded.W_enc, s.W_enc) for s in (a, b))
    assert list(tmp_path.iterdir()) == [path]                   # no temp file left behind


def test_saved_file_records_version_and_metadata(tmp_path):
    sae = _sae(3)
    path = save_sae(sae, tmp_path / "s.pt", profile="toy", dataset="toy", steps=40, final_fvu=0.25)
    blob = read_sae_file(path)
    assert blob["vs2mini_version"] == vs2mini.__version__
    assert blob["extra"] == {"profile": "toy", "dataset": "toy", "steps": 40, "final_fvu": 0.25}
    assert blob["config"]["format"].endswith(f"v{SAE_FORMAT_VERSION}")


def test_damaged_tensor_is_detected(tmp_path):
    path = save_sae(_sae(4), tmp_path / "s.pt")
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["W_dec"][0, 0] += 1.0                   # a silent bit-level change in one weight
    torch.save(blob, path)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_sae(path)


def test_nan_weights_refused_on_save_and_load(tmp_path):
    sae = _sae(5)
    with torch.no_grad():
        sae.b_enc[3] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        save_sae(sae, tmp_path / "nan.pt")
    assert not (tmp_path / "nan.pt").exists()
    # a NaN file written by other means (checksum consistent) is refused on load
    good = save_sae(_sae(5), tmp_path / "s.pt")
    blob = torch.load(good, weights_only=True)
    blob["state_dict"]["b_pre"][0] = float("inf")
    from vs2mini.disk import tensors_checksum
    blob["checksum"] = tensors_checksum(blob["state_dict"])
    torch.save(blob, good)
    with pytest.raises(ValueError, match="NaN or inf"):
        load_sae(good)


def test_newer_format_says_so(tmp_path):
    path = save_sae(_sae(6), tmp_path / "s.pt")
    blob = torch.load(path, weights_only=True)
    blob["config"]["format"] = f"vs2mini-topk-sae-v{SAE_FORMAT_VERSION + 1}"
    torch.save(blob, path)
    with pytest.raises(ValueError, match="newer vs2mini.*upgrade"):
        load_sae(path)


def test_v1_files_still_load(tmp_path):
    """Files from before checksums existed (format v1) load unchanged."""
    sae = _sae(7)
    path = tmp_path / "v1.pt"
    torch.save({"config": {**sae.config(), "format": "vs2mini-topk-sae-v1"},
                "state_dict": sae.state_dict(), "extra": {}}, path)
    assert torch.equal(load_sae(path).W_dec, sae.W_dec)


def test_default_path_encodes_the_settings():
    p = default_sae_path("toy", "toy", "vs2mini-tiny/random-seed0", 8, 256)
    assert p.name == "sae_toy_toy_vs2mini-tiny-random-seed0_k8_n256.pt"
    assert default_sae_path("toy", "toy", "vs2mini-tiny", 16, 256) != default_sae_path(
        "toy", "toy", "vs2mini-tiny", 8, 256)


def test_train_sae_cli_refuses_to_overwrite(tmp_path, capsys, monkeypatch, toy_setup):
    monkeypatch.chdir(tmp_path)
    assert main(["train-sae", "--profile", "toy", "--quiet"]) == 0
    files = list((tmp_path / "runs").iterdir())
    assert len(files) == 1 and files[0].name.startswith("sae_toy_toy_vs2mini-toyclip-toy-") and "_k8_n" in files[0].name
    extra = read_sae_file(files[0])["extra"]
    assert extra["profile"] == "toy" and extra["dataset"] == "toy" and extra["k"] == 8
    assert extra["width"] == 4 * toy_setup.train.cls.shape[1] and extra["steps"] > 0
    # the saved SAE is the selected (best held-out) epoch: its train FVU is recorded
    from vs2mini.method.train import summary
    assert extra["final_fvu"] == summary(extra["history"])["train_fvu"] and extra["heldout_fvu"] is not None
    assert extra["steps"] == extra["history"]["step"][-1]
    before = files[0].read_bytes()
    capsys.readouterr()
    assert main(["train-sae", "--profile", "toy", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert files[0].read_bytes() == before
    assert main(["train-sae", "--profile", "toy", "--quiet", "--force"]) == 0
