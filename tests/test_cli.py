"""The command line (vs2mini/cli.py) in the offline toy profile."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vs2mini.cli import main
from vs2mini.data.registry import DATASETS
from vs2mini.data.toyworld import superclass_of
from vs2mini.paper import PAPER

REPO = Path(__file__).resolve().parents[1]
BANNER = "NOT A REAL RESULT"
METHODS = ["CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "centroid steering (no SAE)", "VS2", "  VS2 centroid part",
           "  VS2 residual part", "VS2 (generalized SAE)", "VS2 + FVU gate",
           "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS"]


@pytest.mark.parametrize("profile", [[], ["--profile", "toy"]])     # toy is the default
def test_zeroshot_toy(tmp_path, capsys, toy_setup, profile):
    out = tmp_path / "zs" / "zeroshot.json"
    assert main(["zeroshot", *profile, "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and text.count(BANNER) == 1               # said once
    res = json.loads(out.read_text())
    assert res["real"] is False and BANNER in res["warning"]
    assert res["dataset"] == "toy" and res["model"] == toy_setup.clip.tag
    assert res["model"].startswith("vs2mini-toyclip/toy-")
    assert len(res["per_class"]) == len(toy_setup.classnames) == 24
    assert set(res["per_class"]) == set(toy_setup.classnames)
    assert 0.0 <= res["top1"] <= 100.0
    # the same number the pipeline gives (the CLI calls the same functions)
    assert res["top1"] == pytest.approx(toy_setup.accuracy(toy_setup.test.cls), abs=1e-9)
    # per-class accuracies average to top-1 here (the toy test split is balanced: 100 per class)
    assert sum(res["per_class"].values()) / 24 == pytest.approx(res["top1"], abs=1e-4)   # top1 is float32
    assert f"top-1 {res['top1']:.2f}%" in text


def test_reproduce_toy(tmp_path, capsys, toy_setup):
    out = tmp_path / "repro.json"
    assert main(["reproduce", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count(BANNER) == 1                                  # said once, not on every line
    lines = text.splitlines()
    for m in METHODS:
        assert any(line.startswith(m + " ") for line in lines), m
    res = json.loads(out.read_text())
    assert res["real"] is False and BANNER in res["warning"]
    assert res["name"] == "main" and res["columns"] == ["top-1", "vs ZS", "se", "steered %"]
    rows = {r["label"]: r["ours"] for r in res["rows"]}
    notes = {r["label"]: r["note"] for r in res["rows"]}
    assert list(rows) == METHODS
    zs = rows["CLIP zero-shot"]["top-1"]
    assert rows["CLIP zero-shot"]["vs ZS"] == 0.0 and rows["CLIP zero-shot"]["se"] == 0.0
    # toy model: the paper column is the paper's CIFAR-100 ViT-B/32 setting, and the JSON says it is not this run's
    assert res["paper_setting"] == "cifar100, ViT-B-32 (the paper's setting; not this run's)"
    for r in res["rows"]:
        o = r["ours"]
        assert 0.0 <= o["top-1"] <= 100.0
        assert o["vs ZS"] == pytest.approx(o["top-1"] - zs, abs=1e-9), r["label"]
        assert r["paper"] == {"top-1": PAPER.get(r["label"], {}).get(("cifar100", "ViT-B-32"))}, r["label"]
        assert o["se"] >= 0.0, r["label"]                            # paired standard error of the gain
    cov = rows["VS2 + FVU gate"]["steered %"]
    assert 0.0 <= cov <= 100.0
    assert 0.0 <= rows["VS2 + FVU gate (in-domain tau)"]["steered %"] <= 100.0
    assert all(r["steered %"] is None for m, r in rows.items() if not m.startswith("VS2 + FVU gate"))
    for name in ("target-domain", "PASS", "generalized"):              # steps and FVUs of every SAE trained
        t = res["settings"]["sae_training"][name]
        assert t["steps"] >= 1 and 0 <= t["heldout_fvu"] and 0 <= t["test_fvu"] and t["paper_fvu"] is None
    assert "held-out" in text and res["settings"]["pass_variant"] == "eq7"
    # the toy diagnostics: errors inside the true super-class, queries with a non-empty S-
    preds, y = toy_setup.logits(toy_setup.test.cls).argmax(-1).tolist(), toy_setup.test.labels.tolist()
    errs = [(p, t) for p, t in zip(preds, y) if p != t]
    within = 100 * sum(superclass_of(p) == superclass_of(t) for p, t in errs) / len(errs)
    assert res["settings"]["zs_errors_within_superclass"] == pytest.approx(within, abs=1e-3)
    assert f"{within:.0f}% of errors inside the true super-class" in notes["CLIP zero-shot"]
    for kind in ("pseudo", "oracle"):
        frac = res["settings"]["s_minus_nonempty"][kind]
        assert 0.0 <= frac <= 1.0 and f"S- non-empty for {100 * frac:.0f}%" in notes[f"VS2++ ({kind})"]
    assert res["settings"]["n_test"] == 2400 and res["settings"]["gamma"] == 1.5 and res["settings"]["lam"] == 2.1


def test_unknown_dataset(capsys):
    assert main(["zeroshot", "--profile", "toy", "--quiet", "--dataset", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'imagenet'" in err
    assert all(name in err for name in DATASETS)
    assert main(["reproduce", "--quiet", "--dataset", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


def test_pretrain_toy_checks_arguments_first(tmp_path, capsys):
    assert main(["pretrain-toy", "--steps", "0", "--out", str(tmp_path / "w.safetensors")]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert main(["pretrain-toy", "--out", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "w.pt" in err and "must end in .safetensors" in err
    assert not list(tmp_path.iterdir())                              # nothing was trained or written


def test_unknown_profile_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["zeroshot", "--profile", "huge"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_module_help():
    r = subprocess.run([sys.executable, "-m", "vs2mini", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in ("features", "zeroshot", "train-sae", "reproduce", "pretrain-toy"):
        assert cmd in r.stdout


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("argv,omp,want", [
    (["--profile", "toy", "--device", "cpu"], None, 1),            # small offline profile on CPU: 1 thread
    (["--profile", "toy", "--device", "cpu", "--threads", "3"], "2", 3),   # --threads wins over everything
    (["--profile", "toy", "--device", "cpu"], "2", "unchanged"),   # the user's OMP_NUM_THREADS is left alone
    (["--profile", "lite", "--device", "cpu"], None, "unchanged"),   # big models: torch's default
])
def test_thread_rule(argv, omp, want, monkeypatch, keep_threads):
    from argparse import ArgumentParser

    from vs2mini.cli import _common, _set_threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    if omp:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    torch.set_num_threads(2)
    p = ArgumentParser()
    _common(p)
    _set_threads(p.parse_args(argv))
    assert torch.get_num_threads() == (2 if want == "unchanged" else want)


def test_threads_must_be_positive(capsys):
    assert main(["zeroshot", "--profile", "toy", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


@pytest.mark.parametrize("flag,sae,features", [("none", False, False), ("sae", True, False),
                                               ("features", False, True), ("all", True, True)])
def test_bf16_flag_sets_the_profile(flag, sae, features):
    from argparse import ArgumentParser

    from vs2mini.cli import _common, _profile
    p = ArgumentParser()
    _common(p)
    prof = _profile(p.parse_args(["--profile", "full", "--bf16", flag]))
    assert (prof.sae.bf16, prof.data.feature_amp) == (sae, features)
    assert _profile(p.parse_args(["--profile", "full"])).sae.bf16 is True      # no flag: the profile's own setting
