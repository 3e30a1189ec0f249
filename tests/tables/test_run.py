"""What every table builds from a set-up (vs2mini/tables/run.py), on a hand-made 2-D stub: pseudo-labels are the
zero-shot argmax, the oracle's labels are the true ones, retrieval is best-first cosine over the train bank, the
paper's FVU is shown for OpenAI weights only, and the small scoring helpers by hand; and the `Run` object (each
set-up, SAE and gate built once per run). (The PASS SAE and the gate data are checked on the stub world of
tests/tables/test_main.py.)"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from vs2mini.clip.features import Features
from vs2mini.clip.models import Clip
from vs2mini.config import get_profile
from vs2mini.pipeline import Setup
from vs2mini.tables import main as R
from vs2mini.tables import run as trun

D = 2


class IdentityLN(torch.nn.Module):
    """ln_post as the identity (with the attribute cls_to_embedding reads): logits = 100 cos(x, head row)."""
    normalized_shape = (D,)

    def forward(self, x):
        return x


def stub_setup(train_cls, test_cls, train_emb, test_emb, train_labels, test_labels) -> Setup:
    visual = torch.nn.Module()
    visual.ln_post, visual.proj = IdentityLN(), torch.nn.Parameter(torch.eye(D), requires_grad=False)
    model = torch.nn.Module()
    model.visual = visual
    clip = Clip(model, None, "stub", None, torch.device("cpu"))
    data = SimpleNamespace(synthetic=True)
    return Setup(get_profile("toy"), clip, "toy", ["east", "north"], Features(train_cls, train_emb, train_labels),
                 Features(test_cls, test_emb, test_labels), torch.eye(D), data, data)


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


@pytest.fixture
def s():
    # CLS tokens: the zero-shot head is e0 ("east"), e1 ("north"), so the prediction is argmax(x0, x1)
    train_cls = torch.tensor([[3., 1], [1, 2], [0.5, 0.2], [-1, 4]])       # predicted 0, 1, 0, 1
    test_cls = torch.tensor([[2., 5], [4, -1]])                          # predicted 1, 0
    # retrieval embeddings on the unit circle at 0, 30, 80 and 170 degrees; queries at 20 and 100 degrees
    train_emb = torch.tensor([unit(0), unit(30), unit(80), unit(170)]) * torch.tensor([[1.], [2], [0.5], [3]])
    test_emb = torch.tensor([unit(20), unit(100)])
    return stub_setup(train_cls, test_cls, train_emb, test_emb, torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0]))


def test_pseudo_labels_are_the_zero_shot_argmax(s):
    bank, query = trun.pseudo_labels(s)
    assert bank.tolist() == [0, 1, 0, 1] and query.tolist() == [1, 0]
    assert torch.equal(query, s.logits(s.test.cls).argmax(-1))            # the zero-shot row's prediction
    assert not torch.equal(bank, s.train.labels)                          # no label is used


def test_vs2pp_labels_by_kind(s):
    assert [t.tolist() for t in trun.vs2pp_labels(s, "pseudo")] == [[0, 1, 0, 1], [1, 0]]
    bank, query = trun.vs2pp_labels(s, "oracle")
    assert bank is s.train.labels and query is s.test.labels              # the true train and test labels
    for bad in ("truth", "Oracle", ""):
        with pytest.raises(ValueError, match=r"unknown VS2\+\+ label source .*'pseudo' or 'oracle'"):
            trun.vs2pp_labels(s, bad)


def test_neighbour_indices_best_first_by_cosine(s):
    # query at 20 deg: train angles 0, 30, 80, 170 are 20, 10, 60, 150 deg away -> 1, 0, 2, 3 (norms do not count)
    # query at 100 deg: 100, 70, 20, 70 deg away -> 2, then 1 and 3 tied (70 deg), then 0
    nn = trun.neighbour_indices(s, 4)
    assert nn.shape == (2, 4) and nn.dtype == torch.int64
    assert nn[0].tolist() == [1, 0, 2, 3]
    assert nn[1, 0] == 2 and set(nn[1, 1:3].tolist()) == {1, 3} and nn[1, 3] == 0
    assert torch.equal(trun.neighbour_indices(s, 2), nn[:, :2])
    with pytest.raises(ValueError, match=r"unknown retrieval features 'pixels'.*\('clip', 'dinov2'\)"):
        trun.neighbour_indices(s, 2, features="pixels")


def test_paper_fvu_only_for_openai_weights():
    # moved from tests/tables/test_main.py (the Result text with it stays there)
    assert trun.paper_fvu("cub200", "ViT-B-32-quickgelu", "openai") == 0.2487
    assert trun.paper_fvu("tinyimagenet", "ViT-B-16", "openai") == 0.3018
    assert trun.paper_fvu("cub200", "ViT-B-32", None) is None and trun.paper_fvu("toy", "ViT-B-32", "openai") is None
    assert trun.paper_fvu("cub200", "ViT-B-32", "laion2b_s34b_b79k") is None


def test_masks_and_positives_note():
    labels = {"pseudo": (torch.tensor([0, 1, 1, 2]), torch.tensor([1])), "oracle": (torch.tensor([2, 2, 0, 2]),
                                                                                    torch.tensor([0]))}
    nn = torch.tensor([[3, 1, 0]])
    m = trun._masks(labels, nn)                                           # eq. 4: the query's label
    assert m["pseudo"].tolist() == [[False, True, False]] and m["oracle"].tolist() == [[False, False, False]]
    maj = trun._masks(labels, nn, "majority")                             # sec. 4.2: the neighbours' majority
    assert maj["oracle"].tolist() == [[True, True, True]]
    assert "eq. 4" in trun._positives_note("query") and "majority" in trun._positives_note("majority")


def test_train_mean_and_centroid_geometry():
    x_train = torch.tensor([[1., 0], [3, 4]])                             # mu = (2, 2)
    assert torch.equal(trun.train_mean(x_train), torch.tensor([2., 2]))
    sae = SimpleNamespace(b_pre=torch.tensor([2., 5]))
    x = torch.tensor([[5., 6], [2, 2]])                                   # ||x - mu|| = 5 and 0
    g = trun.centroid_geometry(x, x_train, sae)
    assert g["mu_norm"] == pytest.approx(math.sqrt(8)) and g["deviation_norm"] == pytest.approx(2.5)
    assert g["ratio"] == pytest.approx(math.sqrt(8) / 2.5) and g["b_pre_to_mu"] == pytest.approx(3.0)


def test_is_config():
    sae = SimpleNamespace(n_latents=8, k=2, d_in=4)
    assert trun._is_config(sae, 2, 2) and not trun._is_config(sae, 2, 3) and not trun._is_config(sae, 4, 2)
    assert not trun._is_config(None, 2, 2)


# ------------------------------------------------------------------------------------------------ Run
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
