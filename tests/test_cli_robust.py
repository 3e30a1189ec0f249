"""The CLI keeps finished work and checks its arguments before working (issue 10, points 1, 7, 10)."""
from __future__ import annotations

import json

import pytest

from datasets_fixtures import make_cifar100
from vs2mini.data import registry as data
from vs2mini.data import archives
from vs2mini import pipeline
from vs2mini.tables import main as reproduce
from vs2mini.cli import main


class _FakeResult:
    def __init__(self, ds):
        self.ds = ds

    def table(self):
        return f"table {self.ds}"

    def to_json(self):
        return json.dumps({"dataset": self.ds, "rows": [{"method": "VS2", "top1": 1.0}]})


@pytest.fixture
def two_datasets(tmp_path, monkeypatch):
    """toy + a CIFAR-100 fixture in its real layout, no network."""
    monkeypatch.setenv("VS2MINI_DATA", str(tmp_path / "data"))
    make_cifar100(tmp_path / "data")
    return tmp_path


def test_multi_dataset_json_keeps_finished_results(two_datasets, monkeypatch, capsys):
    """The second dataset fails: the first one's result is already in the --json file."""
    calls = []

    def fake_run(profile, ds, **kw):
        calls.append(ds)
        if ds == "cifar100":
            raise RuntimeError("out of memory in the second dataset")
        return _FakeResult(ds)

    monkeypatch.setattr(reproduce, "run_reproduce", fake_run)
    out = two_datasets / "res" / "all.json"
    assert main(["reproduce", "--profile", "toy", "--quiet", "--dataset", "toy,cifar100",
                 "--json", str(out)]) == 2
    assert calls == ["toy", "cifar100"]
    kept = json.loads(out.read_text())
    assert [r["dataset"] for r in kept] == ["toy"]
    err = capsys.readouterr().err
    assert "out of memory" in err and str(out) in err
    assert sorted(p.name for p in out.parent.iterdir()) == ["all.json"]        # no temp files left


def test_multi_dataset_json_written_after_each(two_datasets, monkeypatch):
    seen = []
    out = two_datasets / "all.json"

    def fake_run(profile, ds, **kw):
        seen.append(json.loads(out.read_text()) if out.exists() else None)
        return _FakeResult(ds)

    monkeypatch.setattr(reproduce, "run_reproduce", fake_run)
    assert main(["reproduce", "--profile", "toy", "--quiet", "--dataset", "toy,cifar100",
                 "--json", str(out)]) == 0
    assert seen[0] is None and [r["dataset"] for r in seen[1]] == ["toy"]
    assert [r["dataset"] for r in json.loads(out.read_text())] == ["toy", "cifar100"]


def test_every_dataset_checked_before_the_first_is_run(two_datasets, monkeypatch, capsys):
    """cub200 is missing (and cannot be downloaded): nothing runs, the error names it."""
    monkeypatch.setitem(archives.SOURCES, "cub200", archives.SOURCES["cub200"][:1] + ("http://127.0.0.1:9/CUB_200_2011.tgz",)
                        + archives.SOURCES["cub200"][2:])
    calls = []
    monkeypatch.setattr(reproduce, "run_reproduce", lambda profile, ds, **kw: calls.append(ds) or _FakeResult(ds))
    assert main(["reproduce", "--profile", "toy", "--quiet", "--dataset", "toy,cifar100,cub200"]) == 2
    assert calls == []
    assert "cub200" in capsys.readouterr().err


def _no_work(*a, **k):
    raise AssertionError("work started before the arguments were checked")


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "--json", "{file}/x.json"], "--json"),
    (["zeroshot", "--json", "{file}/x.json"], "--json"),
    (["train-sae", "--out", "{file}/sae.pt"], "--out"),
    (["reproduce", "--json", "{dir}"], "--json"),
    (["reproduce", "--k", "0"], "--k must be a positive integer"),
    (["reproduce", "--gate-q", "1.5"], "--gate-q"),
    (["reproduce", "--gate-q", "nan"], "--gate-q"),
    (["reproduce", "--dataset", "toy,imagenet"], "unknown dataset 'imagenet'"),
    (["zeroshot", "--dataset", "toy,cifar100"], "takes one dataset"),
])
def test_arguments_checked_in_the_first_second(argv, message, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    argv = [a.format(file=a_file, dir=tmp_path) for a in argv]
    monkeypatch.setattr(pipeline, "load_setup", _no_work)
    monkeypatch.setattr(reproduce, "run_reproduce", _no_work)
    monkeypatch.setattr(data, "load_dataset", _no_work)
    assert main(argv + ["--profile", "toy", "--quiet"]) == 2     # and no model, dataset or training touched
    assert message in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_gpu_says_so(monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "load_setup", _no_work)
    assert main(["zeroshot", "--profile", "toy", "--quiet", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no GPU" in err and "--device cpu" in err
    from vs2mini.clip.models import load_clip
    with pytest.raises(ValueError, match="no GPU"):            # the API says the same, not "offline"
        load_clip("vs2mini-tiny", None, device="cuda")
    assert main(["zeroshot", "--profile", "toy", "--quiet", "--device", "gpu0"]) == 2
    assert "not a device name" in capsys.readouterr().err


def test_dinov2_unavailable_fails_before_work(monkeypatch, tmp_path, capsys):
    import torch

    from vs2mini.data import download as net
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(net, "reachable", lambda url, timeout=5.0: False)
    monkeypatch.setattr(pipeline, "load_setup", _no_work)
    monkeypatch.setattr(reproduce, "run_reproduce", _no_work)
    assert main(["reproduce", "--profile", "toy", "--quiet", "--retrieval", "dinov2"]) == 2
    assert "--retrieval clip" in capsys.readouterr().err


@pytest.mark.parametrize("kw, message", [
    ({"gamma": float("nan")}, "gamma must be a finite"), ({"lam": float("inf")}, "lam must be a finite"),
    ({"q": 0.0}, "gate_q must be in"), ({"retrieval": "dino"}, "unknown retrieval"),
    ({"positive_rule": "vote"}, "unknown positive rule"), ({"rec_gamma": float("nan")}, "rec_gamma must be a finite"),
])
def test_run_reproduce_checks_arguments_before_work(kw, message, monkeypatch):
    from vs2mini.config import get_profile
    from vs2mini.tables import run as trun
    monkeypatch.setattr(trun, "load_setup", _no_work)
    with pytest.raises(ValueError, match=message):
        reproduce.run_reproduce(get_profile("toy", **kw), "toy", progress=False)
