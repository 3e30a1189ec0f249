"""API inputs that used to broadcast or turn into NaN silently now fail clearly (issue 10, points 9 and 10)."""
from __future__ import annotations

import pytest
import torch

from vs2mini.method import retrieval
from vs2mini.method import steer
from vs2mini.method.sae import TopKSAE
from vs2mini.method.train import train_sae

NONFINITE = [float("nan"), float("inf"), float("-inf")]


@pytest.fixture
def sae():
    return TopKSAE(3, 4, 2, seed=0)


@pytest.mark.parametrize("bad", NONFINITE)
def test_nonfinite_gamma_lambda_tau(sae, bad):
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="gamma must be a finite number"):
        steer.vs2(x, sae, gamma=bad)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        steer.vs2(x, sae, lam=bad)
    with pytest.raises(ValueError, match="gamma must be a finite number"):
        steer.sae_reconstruction(x, sae, gamma=bad)
    with pytest.raises(ValueError, match="tau must be a finite number"):
        steer.gate(x, x, torch.zeros(5), bad)
    bank, nn_idx, pos = torch.randn(4, 3), torch.zeros(5, 2, dtype=torch.long), torch.ones(5, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="(gamma|lam) must be a finite number"):
        steer.vs2pp_from_bank(x, bank, nn_idx, pos, gamma=bad)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        steer.vs2pp_from_bank(x, bank, nn_idx, pos, lam=bad)


def test_shapes_that_would_broadcast(sae):
    x = torch.randn(5, 3)
    nn_idx, pos = torch.zeros(5, 2, dtype=torch.long), torch.ones(5, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mu must be the training mean of shape \(3,\)"):
        steer.per_sample_fvu(x, sae, torch.zeros(1))
    with pytest.raises(ValueError, match="one value per row"):
        steer.gate(x, x + 1, torch.zeros(1), 0.5)                       # one FVU value for many rows
    with pytest.raises(ValueError, match="one value per row"):
        steer.gate(x, x + 1, torch.zeros(5, 1), 0.5)
    with pytest.raises(ValueError, match="same shape"):
        steer.apply_steering(x, torch.ones(5, 1), 2.0)                  # width-1 directions
    with pytest.raises(ValueError, match="same shape"):
        steer.gate(x, torch.zeros(1, 3), torch.zeros(5), 0.5)
    with pytest.raises(ValueError, match="d = 3"):
        steer.vs2pp_from_bank(x, torch.randn(4, 1), nn_idx, pos)            # width-1 bank directions
    with pytest.raises(ValueError, match="finite values"):
        steer.fvu_threshold(torch.tensor([0.1, float("nan")]), 0.5)


def test_knn_names_nan_rows():
    bank, q = torch.randn(10, 4), torch.randn(3, 4)
    bank[7, 2] = float("nan")
    with pytest.raises(ValueError, match=r"bank row 7 contains NaN"):
        retrieval.knn(q, bank, 2)
    q[1] = float("inf")
    with pytest.raises(ValueError, match=r"queries row 1 contains NaN or inf"):
        retrieval.knn(q, torch.randn(10, 4), 2)


@pytest.mark.parametrize("make, message", [
    (lambda: torch.ones(20, 3) * 0.7, "constant"),
    (lambda: torch.randn(20, 3) * 1e12, "absurdly scaled"),
    (lambda: torch.randn(20, 3) * 1e-8, "absurdly scaled"),
])
def test_training_data_checks(make, message):
    with pytest.raises(ValueError, match=message):
        train_sae(make(), k=2, expansion=2, epochs=1, batch_size=8, device="cpu", progress=False)


def test_float64_activations_get_their_own_message(sae):
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"torch.float32 activations.*got torch.float64.*x.to\(torch.float32\)"):
        sae.encode(x)
    with pytest.raises(ValueError, match="float64"):
        steer.vs2(x, sae)
    assert torch.equal(sae.encode(x.float()), sae.encode(x.to(torch.float32)))    # the advice works
