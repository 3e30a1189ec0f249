"""The exercises' check functions: the right answer passes, each typical mistake gets its own hint, stub answers
(None, 0, the expected value as a string, a list, NaN, a wrong shape) are refused without raising, and no hint
prints the expected value.

Typical mistakes recognised, per check (each asserted below):
- notebook 1 (ensemble top-1): a fraction instead of percent; a count of correct images; the single-template
  accuracy; the train split's accuracy; a string; NaN.
- notebook 2 (per-sample FVU): the batch mean instead of the training mean; norms instead of squared norms;
  numerator and denominator swapped; ||x||^2 as denominator; the squared error alone; one number instead of one
  per token; a list; NaN entries.
- notebook 3 (held-out (gamma, lambda, gain)): the pair chosen on B (halves swapped or tuned on the evaluation
  half); a pair not best on A; a pair off the grid; the best gain on B; the gain on A; B's top-1 instead of the
  gain; the whole split's zero-shot subtracted; the wrong sign; the gain alone; a grid that contains the identity
  (gamma = 1), whose answer would be 0.
- notebook 4 (centroid shift): the test tokens' mean for mu; the norm of a mean; the ratio upside down; squared
  norms; a string; a list; NaN.
- notebook 5 (majority mask): S- instead of S+; the nearest neighbour's label; eq. 4's query rule; the mode over
  the queries (dim=0); a tie broken the other way; all True; all False; a float mask; a wrong shape.
- notebook 6 (PASS gradient): differentiating the class mean only inside the own term (factor 1 - 1/n_y); not
  dividing by B; the factor 2 missing; the wrong sign; the dense (B, n) gradient; zeros; NaN.
- notebook 7 (changed rows): an extra row that cannot change; a missing gate row; a missing VS2++ row; a name that
  is no row; a plain string (split into characters by set()); display names accepted.
- notebook 8 (best alpha): lambda * gamma; the best top-1; gamma or lambda alone; the worst cell; a (gamma, lambda)
  pair.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from answers import STUBS, refuses, said  # tests/answers.py
from vs2mini.teach import exercises
from vs2mini.method import metrics
from vs2mini.method import steer
from vs2mini.method.sae import TopKSAE


@pytest.fixture
def sae_data():
    gen = torch.Generator().manual_seed(0)
    x_train = torch.randn(64, 6, generator=gen)
    x = torch.randn(20, 6, generator=gen)
    sae = TopKSAE(6, 12, 2, seed=0).eval().requires_grad_(False)
    with torch.no_grad():
        sae.b_pre.copy_(x_train.mean(0))
    return sae, x_train, x, x_train.mean(0)


class FakeSetup:
    """The two members the grid checks use: test tokens/labels and `accuracy` through a fixed linear head."""

    def __init__(self, n: int = 400, d: int = 6, c: int = 5, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.head = torch.randn(c, d, generator=gen)
        cls = torch.randn(n, d, generator=gen)
        labels = (cls @ self.head.T + 2.0 * torch.randn(n, c, generator=gen)).argmax(1)
        self.test = SimpleNamespace(cls=cls, labels=labels)

    def accuracy(self, cls, labels=None):
        return metrics.top1(cls @ self.head.T, self.test.labels if labels is None else labels)


def test_none_is_not_attempted(capsys, sae_data):
    sae, _, x, mu = sae_data
    assert not exercises.check_per_sample_fvu(None, x, sae, mu)
    assert "not attempted yet" in said(capsys)
    assert not exercises.check_changed_rows(None, ["VS2"])
    assert "not attempted yet" in said(capsys)
    # the ensemble check answers None before building its reference head (1,800 prompts: minutes on a CPU)
    assert not exercises.check_ensemble_accuracy(None, SimpleNamespace())
    assert "not attempted yet" in said(capsys)


def test_per_sample_fvu(capsys, sae_data):
    sae, _, x, mu = sae_data
    check = lambda a: exercises.check_per_sample_fvu(a, x, sae, mu)
    x_tilde = sae.reconstruct(x)
    right = (x_tilde - x).pow(2).sum(-1) / (x - mu).pow(2).sum(-1)
    assert check(right) and said(capsys).startswith("correct")
    err = (x_tilde - x).pow(2).sum(-1)
    assert "TRAINING mean" in refuses(check, err / (x - x.mean(0)).pow(2).sum(-1), capsys)
    assert "SQUARED" in refuses(check, right.sqrt(), capsys)
    assert "swapped" in refuses(check, 1 / right, capsys)
    assert "||x||^2" in refuses(check, err / x.pow(2).sum(-1), capsys)
    assert "squared error alone" in refuses(check, err, capsys)
    assert "one value per token" in refuses(check, right.sum(), capsys)
    assert "torch.Tensor" in refuses(check, right.tolist(), capsys)
    nan = right.clone()
    nan[3] = float("nan")
    assert "NaN" in refuses(check, nan, capsys)
    assert "shape" in refuses(check, right[:, None], capsys)
    for stub in STUBS + [torch.zeros(len(x)), torch.zeros(())]:
        refuses(check, stub, capsys)


def test_held_out_gain_recomputes_and_refuses_the_identity(capsys, sae_data):
    sae = sae_data[0]
    setup = FakeSetup()
    gammas, lams = [1.5, 3.0], [1.0, 4.0]
    x, y = setup.test.cls, setup.test.labels
    a, b = exercises.held_out_halves(len(y), 0)
    grid = lambda h: torch.tensor([[setup.accuracy(steer.vs2(x[h], sae, g, l), y[h]) for l in lams]
                                   for g in gammas])
    i, j = divmod(int(grid(a).argmax()), len(lams))
    right = (gammas[i], lams[j], grid(b)[i, j].item() - setup.accuracy(x[b], y[b]))
    assert exercises.check_held_out_gain(right, setup, sae, gammas, lams) and said(capsys).startswith("correct")
    assert not exercises.check_held_out_gain(right, setup, sae, [1.0] + gammas, lams)
    assert "no steering" in said(capsys)


def test_majority_mask(capsys):
    nbr = torch.tensor([[3, 1, 3, 2], [5, 5, 4, 4], [7, 8, 8, 8]])
    query = torch.tensor([1, 5, 7])
    right = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)   # tie 5/4 -> 4
    check = lambda a: exercises.check_majority_mask(a, nbr, query)
    assert check(right) and said(capsys).startswith("correct")
    assert check(right.long()) and said(capsys).startswith("correct")      # a 0/1 integer mask is fine
    assert "S-" in refuses(check, ~right, capsys)
    assert "nearest neighbour" in refuses(check, nbr == nbr[:, :1], capsys)
    assert "eq. 4" in refuses(check, nbr == query[:, None], capsys)
    assert "dim=0" in refuses(check, nbr == torch.mode(nbr, dim=0).values[None, :], capsys)
    other_tie = right.clone()
    other_tie[1] = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    assert "smaller label id" in refuses(check, other_tie, capsys)
    assert "every neighbour" in refuses(check, torch.ones_like(right), capsys)
    assert "no neighbour" in refuses(check, torch.zeros_like(right), capsys)
    assert "boolean" in refuses(check, right.float() * 0.5, capsys)
    assert "shape" in refuses(check, right[:, :2], capsys)
    one_row = right.clone()
    one_row[2] = torch.tensor([1, 0, 0, 1], dtype=torch.bool)
    generic = refuses(check, one_row, capsys)
    assert "torch.mode" not in generic and "==" not in generic          # the generic hint gives no solution
    for stub in STUBS + [right.tolist()]:
        refuses(check, stub, capsys)


def test_pass_gradient(capsys):
    # five codes, n = 3 latents, k = 1: class 0 (three images) shares latent 0, class 1 uses latents 1 and 2
    vals = torch.tensor([[2.0], [4.0], [3.0], [3.0], [6.0]])
    idx = torch.tensor([[0], [0], [1], [2], [0]])
    labels = torch.tensor([0, 0, 1, 1, 0])
    check = lambda a: exercises.check_pass_gradient(a, vals, idx, labels, 3)
    # by hand: class means zbar_0 = (4, 0, 0), zbar_1 = (0, 1.5, 1.5); (2 / B) (z_i - zbar_{y_i}) at idx
    right = torch.tensor([[-0.8], [0.0], [0.6], [0.6], [0.8]])
    assert check(right) and said(capsys).startswith("correct")
    own_only = right * torch.tensor([[2 / 3], [2 / 3], [1 / 2], [1 / 2], [2 / 3]])
    assert "own term" in refuses(check, own_only, capsys)
    assert "divide by B" in refuses(check, 5 * right, capsys)
    assert "2u" in refuses(check, right / 2, capsys)
    assert "wrong sign" in refuses(check, -right, capsys)
    dense = torch.zeros(5, 3).scatter(1, idx, right)
    assert "gather" in refuses(check, dense, capsys)
    assert "not zero" in refuses(check, torch.zeros(5, 1), capsys)
    nan = right.clone()
    nan[0, 0] = math.nan
    assert "NaN" in refuses(check, nan, capsys)
    for stub in STUBS + [right.tolist()]:
        refuses(check, stub, capsys)


def test_changed_rows(capsys):
    methods = ["CLIP zero-shot", "SAE^F_REC", "VS2", "VS2 + FVU gate", "VS2 + FVU gate (in-domain tau)",
               "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS"]
    right = {"VS2 + FVU gate", "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)"}
    check = lambda a: exercises.check_changed_rows(a, methods)
    assert check(right) and said(capsys).startswith("correct")
    shown = {"VS2 + FVU gate", "VS2 + FVU gate (in-domain τ)", "VS2++ (pseudo-labels)", "VS2++ (oracle)"}
    assert check(shown) and said(capsys).startswith("correct")        # the names the page shows
    assert check(sorted(right)) and said(capsys).startswith("correct")  # a list is fine
    assert "same seed" in refuses(check, right | {"VS2"}, capsys)
    assert "SAE rec." in refuses(check, right | {"SAE^F_REC"}, capsys)
    assert "quantile" in refuses(check, right - {"VS2 + FVU gate"}, capsys)
    assert "VS2++ row" in refuses(check, right - {"VS2++ (oracle)"}, capsys)
    assert "not row names" in refuses(check, {"VS2++"}, capsys)
    assert "characters" in refuses(check, "VS2 + FVU gate", capsys)
    assert "row name" in refuses(check, [1, 2], capsys)
    for stub in [0, 0.0, "", str(sorted(right)), {}, True]:
        refuses(check, stub, capsys)
    refuses(check, set(), capsys)


def test_check_best_alpha(capsys, sae_data):
    # (the verdict on a given grid: tests/teach/test_judges.py) the check recomputes the grid from the reader's
    # set-up and SAE
    sae, setup = sae_data[0], FakeSetup()
    g2, l2 = [1.25, 3.0], [1.0, 4.0]
    acc = torch.tensor([[setup.accuracy(steer.vs2(setup.test.cls, sae, g, l)) for l in l2] for g in g2])
    best = [l2[j] * (g2[i] - 1) for i in range(2) for j in range(2) if acc[i, j] == acc.max()]
    assert exercises.check_best_alpha(best[0], setup, sae, g2, l2) and said(capsys).startswith("correct")


# ------------------------------------------------------------------- "When does VS2 help?": the centroid shift
def test_check_centroid_shift(capsys):
    from vs2mini.teach import exercises as ex
    g = torch.Generator().manual_seed(0)
    x_train, x_test = torch.randn(40, 5, generator=g) + 1.0, torch.randn(20, 5, generator=g) + 1.2
    x_ref = torch.randn(30, 5, generator=g)
    mu, mu_ref = x_train.mean(0), x_ref.mean(0)
    right = ((mu - mu_ref).norm() / (x_test - mu).norm(dim=-1).mean()).item()     # by hand
    assert ex.check_centroid_shift(right, x_train, x_test, x_ref)
    assert ex.check_centroid_shift(torch.tensor(right), x_train, x_test, x_ref)
    assert not ex.check_centroid_shift(None, x_train, x_test, x_ref)
    for bad in ("0.3", [right], True, 0, 0.0, str(right), float("nan"), torch.tensor([right, right])):
        assert not ex.check_centroid_shift(bad, x_train, x_test, x_ref)
    test_mu = x_test.mean(0)
    with_test_mean = ((test_mu - mu_ref).norm() / (x_test - test_mu).norm(dim=-1).mean()).item()
    capsys.readouterr()
    assert not ex.check_centroid_shift(with_test_mean, x_train, x_test, x_ref)
    assert "TRAIN" in capsys.readouterr().out
    assert not ex.check_centroid_shift(1 / right, x_train, x_test, x_ref)
    assert not ex.check_centroid_shift(right * 1.01, x_train, x_test, x_ref)
    # the check recomputes from the tensors it is given and never prints the expected value
    out = capsys.readouterr().out
    assert f"{right:.2f}" not in out and f"{right:.3f}" not in out
    assert not ex.check_centroid_shift(right, x_train, x_test + 1.0, x_ref)
