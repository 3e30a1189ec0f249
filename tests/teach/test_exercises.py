"""The exercises' check functions: the right answer passes, each typical mistake gets its own hint."""
from __future__ import annotations

import pytest
import torch

from vs2mini.teach import exercises
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


def said(capsys) -> str:
    return capsys.readouterr().out


def test_none_is_not_attempted(capsys, sae_data):
    sae, _, x, mu = sae_data
    assert not exercises.check_per_sample_fvu(None, x, sae, mu)
    assert "not attempted yet" in said(capsys)
    assert not exercises.check_changed_rows(None, ["VS2"])
    assert "not attempted yet" in said(capsys)


def test_per_sample_fvu(capsys, sae_data):
    sae, _, x, mu = sae_data
    x_tilde = sae.reconstruct(x)
    right = (x_tilde - x).pow(2).sum(-1) / (x - mu).pow(2).sum(-1)
    assert exercises.check_per_sample_fvu(right, x, sae, mu) and said(capsys).startswith("correct")
    batch_mean = (x_tilde - x).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)
    assert not exercises.check_per_sample_fvu(batch_mean, x, sae, mu)
    assert "TRAINING mean" in said(capsys)
    assert not exercises.check_per_sample_fvu(right.sqrt(), x, sae, mu)
    assert "SQUARED" in said(capsys)
    assert not exercises.check_per_sample_fvu(1 / right, x, sae, mu)
    assert "swapped" in said(capsys)
    assert not exercises.check_per_sample_fvu(right.sum(), x, sae, mu)
    assert "one value per token" in said(capsys)
    assert not exercises.check_per_sample_fvu([1.0], x, sae, mu)
    assert "torch.Tensor" in said(capsys)


def test_held_out_gain(capsys):
    grid_a = torch.tensor([[50.0, 53.0], [52.0, 51.0]])     # best on A: (0, 1)
    grid_b = torch.tensor([[49.0, 51.0], [54.0, 50.0]])     # best on B: (1, 0)
    zs_a, zs_b = 50.0, 49.5
    assert exercises.judge_held_out_gain(1.5, grid_a, grid_b, zs_a, zs_b) and said(capsys).startswith("correct")
    assert not exercises.judge_held_out_gain(4.5, grid_a, grid_b, zs_a, zs_b)
    assert "tuned on the evaluation data" in said(capsys)
    assert not exercises.judge_held_out_gain(3.0, grid_a, grid_b, zs_a, zs_b)
    assert "half A" in said(capsys)
    assert not exercises.judge_held_out_gain(51.0, grid_a, grid_b, zs_a, zs_b)
    assert "minus zero-shot" in said(capsys)
    assert not exercises.judge_held_out_gain(None, grid_a, grid_b, zs_a, zs_b)
    assert "not attempted" in said(capsys)


def test_majority_mask(capsys):
    nbr = torch.tensor([[3, 1, 3, 2], [5, 5, 4, 4], [7, 8, 8, 8]])
    right = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)   # tie 5/4 -> 4
    assert exercises.check_majority_mask(right, nbr) and said(capsys).startswith("correct")
    assert not exercises.check_majority_mask(~right, nbr)
    assert "S-" in said(capsys)
    assert not exercises.check_majority_mask(nbr == nbr[:, :1], nbr)
    assert "nearest neighbour" in said(capsys)
    other_tie = right.clone()
    other_tie[1] = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    assert not exercises.check_majority_mask(other_tie, nbr)
    assert "smaller label id" in said(capsys)
    assert not exercises.check_majority_mask(right[:, :2], nbr)
    assert "shape" in said(capsys)


def test_pass_gradient(capsys):
    # four codes, n = 3 latents, k = 1: classes {0, 1} share latent 0, class 1 uses latents 1 and 2
    vals = torch.tensor([[2.0], [4.0], [3.0], [3.0]])
    idx = torch.tensor([[0], [0], [1], [2]])
    labels = torch.tensor([0, 0, 1, 1])
    right = torch.tensor([[-0.5], [0.5], [0.75], [0.75]])      # (2 / B) (z_i - zbar_{y_i}) at idx, by hand
    assert exercises.check_pass_gradient(right, vals, idx, labels, 3) and said(capsys).startswith("correct")
    assert not exercises.check_pass_gradient(4 * right, vals, idx, labels, 3)
    assert "divide by B" in said(capsys)
    assert not exercises.check_pass_gradient(right / 2, vals, idx, labels, 3)
    assert "2u" in said(capsys)
    assert not exercises.check_pass_gradient(-right, vals, idx, labels, 3)
    assert "wrong sign" in said(capsys)
    dense = torch.zeros(4, 3).scatter(1, idx, right)
    assert not exercises.check_pass_gradient(dense, vals, idx, labels, 3)
    assert "gather" in said(capsys)


def test_changed_rows(capsys):
    methods = ["CLIP zero-shot", "SAE^F_REC", "VS2", "VS2 + FVU gate", "VS2++ (pseudo)", "VS2++ (oracle)",
               "VS2 + PASS"]
    right = {"VS2 + FVU gate", "VS2++ (pseudo)", "VS2++ (oracle)"}
    assert exercises.check_changed_rows(right, methods) and said(capsys).startswith("correct")
    assert not exercises.check_changed_rows(right | {"VS2"}, methods)
    assert "same seed" in said(capsys)
    assert not exercises.check_changed_rows(right - {"VS2 + FVU gate"}, methods)
    assert "quantile" in said(capsys)
    assert not exercises.check_changed_rows({"VS2 + FVU gate", "VS2++ (pseudo)"}, methods)
    assert "VS2++ (oracle)" in said(capsys)
    assert not exercises.check_changed_rows({"VS2++"}, methods)
    assert "not row names" in said(capsys)


def test_ensemble_accuracy(capsys):
    assert exercises.judge_ensemble_accuracy(63.5, 61.0, 63.5) and said(capsys).startswith("correct")
    assert not exercises.judge_ensemble_accuracy(0.635, 61.0, 63.5)
    assert "percent" in said(capsys)
    assert not exercises.judge_ensemble_accuracy(61.0, 61.0, 63.5)
    assert "single-template" in said(capsys)
