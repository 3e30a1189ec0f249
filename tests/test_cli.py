"""The command line (vs2mini/cli.py) in the offline smoke profile."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vs2mini.cli import main
from vs2mini.data import DATASETS

REPO = Path(__file__).resolve().parents[1]
BANNER = "NOT A REAL RESULT"
METHODS = ["CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "VS2", "VS2 (generalized SAE)", "VS2 + FVU gate",
           "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS"]


def test_zeroshot_smoke(tmp_path, capsys, smoke_setup):
    out = tmp_path / "zs" / "zeroshot.json"
    assert main(["zeroshot", "--profile", "smoke", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and BANNER in text
    res = json.loads(out.read_text())
    assert res["real"] is False and BANNER in res["warning"]
    assert res["dataset"] == "synthetic" and res["model"] == "vs2mini-tiny/random-seed0"
    assert len(res["per_class"]) == len(smoke_setup.classnames) == 10
    assert set(res["per_class"]) == set(smoke_setup.classnames)
    assert 0.0 <= res["top1"] <= 100.0
    # the same number the pipeline gives (the CLI calls the same functions)
    assert res["top1"] == pytest.approx(smoke_setup.accuracy(smoke_setup.test.cls), abs=1e-9)
    # per-class accuracies average to top-1 here (the synthetic test split is balanced: 20 per class)
    assert sum(res["per_class"].values()) / 10 == pytest.approx(res["top1"], abs=1e-6)
    assert f"top-1 {res['top1']:.2f}%" in text


def test_reproduce_smoke(tmp_path, capsys):
    out = tmp_path / "repro.json"
    assert main(["reproduce", "--profile", "smoke", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert BANNER in text
    lines = text.splitlines()
    for m in METHODS:
        assert any(line.startswith(m + " ") for line in lines), m
    res = json.loads(out.read_text())
    assert res["real"] is False and BANNER in res["warning"]
    rows = {r["method"]: r for r in res["rows"]}
    assert list(rows) == METHODS
    zs = rows["CLIP zero-shot"]["top1"]
    assert rows["CLIP zero-shot"]["delta"] == 0.0
    for r in res["rows"]:
        assert 0.0 <= r["top1"] <= 100.0
        assert r["delta"] == pytest.approx(r["top1"] - zs, abs=1e-9), r["method"]
        assert r["paper"] is None                                   # random weights: no paper number to compare
    cov = rows["VS2 + FVU gate"]["coverage"]
    assert 0.0 <= cov <= 1.0
    assert 0.0 <= rows["VS2 + FVU gate (in-domain tau)"]["coverage"] <= 1.0
    assert all(r["coverage"] is None for m, r in rows.items() if not m.startswith("VS2 + FVU gate"))
    for name in ("target-domain", "PASS", "generalized"):              # steps and FVUs of every SAE trained
        t = res["settings"]["sae_training"][name]
        assert t["steps"] >= 1 and 0 <= t["heldout_fvu"] and 0 <= t["test_fvu"] and t["paper_fvu"] is None
    assert "held-out" in text and res["settings"]["pass_variant"] == "ratio"
    assert res["settings"]["n_test"] == 200 and res["settings"]["gamma"] == 1.5 and res["settings"]["lam"] == 2.1


def test_unknown_dataset(capsys):
    assert main(["zeroshot", "--profile", "smoke", "--quiet", "--dataset", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'imagenet'" in err
    assert all(name in err for name in DATASETS)
    assert main(["reproduce", "--profile", "smoke", "--quiet", "--dataset", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


def test_unknown_profile_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["zeroshot", "--profile", "huge"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_module_help():
    r = subprocess.run([sys.executable, "-m", "vs2mini", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in ("features", "zeroshot", "train-sae", "reproduce"):
        assert cmd in r.stdout
