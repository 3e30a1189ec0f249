"""Every reproduce flag is honoured by every --table or refused for that table (no flag accepted and ignored), and
--table runs write each result as soon as it is done."""
from __future__ import annotations

import json

import pytest

from vs2mini import config as profiles
from vs2mini import pipeline
from vs2mini.tables import registry as experiments
from vs2mini.cli import main
from vs2mini.tables import flags
from vs2mini.tables.flags import TABLE_FLAGS

SMALL = dict(n_train=1000, n_test=300)
VALUES = {"--positives": "majority", "--gate-q": "0.5", "--pass-variant": "ratio", "--retrieval": "dinov2"}


@pytest.fixture
def small_toy(monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "toy", profiles.PROFILES["toy"].set(**SMALL))


def _run(tmp_path, capsys, table, *flags):
    out = tmp_path / f"{table}{'_'.join(flags).replace('-', '')}.json"
    rc = main(["reproduce", "--profile", "toy", "--quiet", "--table", table, "--json", str(out), *flags])
    err = capsys.readouterr().err
    return rc, err, (json.loads(out.read_text()) if rc == 0 else None)


def _numbers(res):
    return [r["ours"] for r in res["rows"]] + [m["values"] for m in res["matrices"]]


def test_the_flag_table_covers_every_flag():
    assert {f for _, f, _, _ in TABLE_FLAGS} == set(VALUES)


@pytest.mark.parametrize("table", list(experiments.TABLES))
@pytest.mark.parametrize("flag", list(VALUES))
def test_every_table_honours_or_refuses_every_flag(tmp_path, capsys, small_toy, table, flag):
    option = next(o for _, f, o, _ in TABLE_FLAGS if f == flag)
    if option in experiments.TABLES[table].options:
        rc0, _, base = _run(tmp_path, capsys, table)
        rc, err, res = _run(tmp_path, capsys, table, flag, VALUES[flag])
        assert rc0 == rc == 0, err
        assert _numbers(res) != _numbers(base)
    else:
        rc, err, _ = _run(tmp_path, capsys, table, flag, VALUES[flag])
        assert rc == 2 and flag in err and f"--table {table}" in err and err.count("\n") == 1


def test_honoured_flags_change_what_they_say(tmp_path, capsys, small_toy):
    _, _, res = _run(tmp_path, capsys, "ood-gate", "--gate-q", "0.5")
    labels = [r["label"] for r in res["rows"]]
    assert "VS2 + FVU gate (q=0.5)" in labels and not any("q=0.95" in lab for lab in labels)
    _, _, res = _run(tmp_path, capsys, "sweep-neighbours", "--positives", "majority")
    assert any("majority" in n for n in res["notes"])


def test_all_refuses_table_flags_and_real_profiles_refuse_k_for_paper_k_tables(tmp_path, capsys):
    assert main(["reproduce", "--profile", "toy", "--table", "all", "--positives", "majority"]) == 2
    assert "--positives is not used by --table all" in capsys.readouterr().err
    for name, t in experiments.TABLES.items():
        rc = main(["reproduce", "--profile", "lite", "--table", name, "--k", "8", "--dataset", "cifar100"])
        err = capsys.readouterr().err
        if t.paper_k:
            assert rc == 2 and "--k is not used" in err and name in err
        else:
            assert "--k is not used" not in err


def test_k_reaches_every_sae_of_every_offline_table(tmp_path, capsys, small_toy, monkeypatch):
    seen = []
    real = pipeline.train_sae

    def record(X, **kw):
        seen.append(kw["k"])
        return real(X, **{**kw, "epochs": 1, "min_steps": 1})
    monkeypatch.setattr(pipeline, "train_sae", record)
    for name in experiments.TABLES:
        seen.clear()
        rc, err, _ = _run(tmp_path, capsys, name, "--k", "7")
        assert rc == 0, err
        # sweep-width-k also trains half the profile's k, one step along that axis
        assert seen and set(seen) <= ({7, 3} if name == "sweep-width-k" else {7}), (name, seen)


def test_table_results_are_written_as_each_finishes(tmp_path, capsys, small_toy, monkeypatch):
    """--dataset toy,cub200 with a CUB that fails after the toy table: the toy result is in the JSON."""
    real = experiments.run_table

    def run_table(name, profile=None, dataset=None, **kw):
        if dataset == "toy-shifted":
            raise ValueError("toy-shifted: an unreadable image (simulated)")
        return real(name, profile, dataset, **kw)
    monkeypatch.setattr(flags, "run_table", run_table)             # the run_table that `--table` calls
    out = tmp_path / "t.json"
    rc = main(["reproduce", "--profile", "toy", "--quiet", "--table", "sweep-gamma-lambda", "--dataset",
               "toy,toy-shifted", "--json", str(out)])
    assert rc == 2 and "unreadable image" in capsys.readouterr().err
    res = json.loads(out.read_text())
    assert [r["name"] for r in res] == ["sweep-gamma-lambda"] and res[0]["setting"].startswith("toy,")
