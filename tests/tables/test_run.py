"""vs2mini/tables/run.py: the `Run` object (each set-up, SAE and gate built once per run)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vs2mini.config import get_profile
from vs2mini.tables import main as R
from vs2mini.tables import run as trun


class FakeSetup(SimpleNamespace):
    """What Run touches of a Setup: its dataset, profile and train_sae (counted)."""

    def train_sae(self, labels=None, w_aux=0.0, progress=True, **kw):
        self.trained.append("pass" if labels is not None else "plain")
        return (f"{self.dataset} {'PASS' if labels is not None else 'plain'} SAE", {"step": [1]})


@pytest.fixture
def loads(monkeypatch):
    seen = []

    def fake_load(profile, ds, **kw):
        seen.append(ds)
        return FakeSetup(dataset=ds, profile=profile, trained=[], train=SimpleNamespace(labels=torch.zeros(2)))
    monkeypatch.setattr(trun, "load_setup", fake_load)
    gates = []
    monkeypatch.setattr(trun, "general_gate_data",
                        lambda s, sae=None, progress=False: gates.append((s.dataset, sae)) or (f"gate {s.dataset}", None))
    return SimpleNamespace(setups=seen, gates=gates)


def test_run_builds_each_piece_once(loads):
    run = trun.Run(get_profile("toy", datasets=("a", "b")))
    assert run.sae() == run.sae("a") == "a plain SAE"                  # the default dataset: the profile's first
    assert run.pass_sae("a") == run.pass_sae("a") == "a PASS SAE"
    assert run.sae("b") == "b plain SAE"
    assert loads.setups == ["a", "b"]                                  # each set-up loaded once
    assert run.setup("a").trained == ["plain", "pass"] and run.setup("b").trained == ["plain"]
    assert run.history("sae", "a") == {"step": [1]} and run.history("gate", "a") is None


def test_gate_reuses_the_target_sae_only_when_its_union_is_this_dataset(loads):
    alone = trun.Run(get_profile("toy", datasets=("a",)))
    assert alone.gate("a") == alone.gate("a") == "gate a"
    assert loads.gates == [("a", "a plain SAE")]                       # built once, with the target-domain SAE
    union = trun.Run(get_profile("toy", datasets=("a", "b")))
    union.gate("a")
    assert loads.gates[-1] == ("a", None)                              # a union of two: its own SAE
    other = trun.Run(get_profile("toy", datasets=("a",), sae_datasets=("b",)))
    other.gate("a")
    assert loads.gates[-1] == ("a", None)


def test_run_of_reuses_what_is_given(loads):
    s = FakeSetup(dataset="x", profile=get_profile("toy"), trained=[], train=SimpleNamespace(labels=torch.zeros(2)))
    run = trun.Run.of(s, sae="given SAE", gate="given gate", saes={"y": "y SAE"})
    assert run.setup() is s and run.sae() == "given SAE" and run.gate() == "given gate" and run.sae("y") == "y SAE"
    assert s.trained == [] and loads.setups == [] and run.history("sae") is None
    assert run.pass_sae() == "x PASS SAE" and s.trained == ["pass"]    # what was not given is trained
    assert trun.Run.of(s, profile=get_profile("lite")).profile.name == "lite"


def test_a_profile_and_a_run_together_are_refused(loads):
    with pytest.raises(ValueError, match="either a profile or a run"):
        R.run_reproduce("toy", run=trun.Run("toy"))
    assert loads.setups == []
