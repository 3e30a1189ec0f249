"""The test oracles of tests/oracles.py checked on their own: hand cases, and the two readings of VS2++ agree."""
from __future__ import annotations

import torch

import oracles


def test_masked_mean():
    codes = torch.tensor([[[1., 2.], [3., 4.], [5., 6.]]])
    assert torch.allclose(oracles.masked_mean(codes, torch.tensor([[True, False, True]])), torch.tensor([[3., 4.]]))
    assert torch.equal(oracles.masked_mean(codes, torch.zeros(1, 3, dtype=torch.bool)), torch.zeros(1, 2))


def test_eq5_hand_case_and_empty_sets():
    # x = (3, 4); S+ = {(1, 0)}, S- = {(0, 1), (0, 3)}: cbar+ - cbar- = (1, -2); gamma 2, lam 1: y = (4, 2)
    x = torch.tensor([[3., 4.], [3., 4.], [3., 4.]])
    nbrs = torch.tensor([[[1., 0.], [0., 1.], [0., 3.]]] * 3)
    pos = torch.tensor([[True, False, False], [False] * 3, [True] * 3])
    out = oracles.vs2pp_eq5(x, nbrs, pos, gamma=2.0, lam=1.0, rescale=False)
    assert torch.allclose(out[0], torch.tensor([4., 2.]))
    assert torch.equal(out[1], x[1])                                    # S+ empty: unsteered
    assert torch.allclose(out[2], torch.tensor([10 / 3, 16 / 3]))      # S- empty: cbar- = 0, cbar+ = (1/3, 4/3)
    resc = oracles.vs2pp_eq5(x, nbrs, pos, gamma=2.0, lam=1.0)
    assert torch.allclose(resc[0], torch.tensor([4., 2.]) * 5 / 20 ** 0.5)
    # a decoder maps the code difference: W_dec = 2 I doubles vbar
    dec = oracles.vs2pp_eq5(x, nbrs, pos, gamma=2.0, lam=1.0, W_dec=2 * torch.eye(2), rescale=False)
    assert torch.allclose(dec[0], torch.tensor([5., 0.]))


def test_the_two_readings_agree():
    g = torch.Generator().manual_seed(0)
    x, nbrs = torch.randn(6, 3, generator=g), torch.randn(6, 4, 3, generator=g)
    pos = torch.rand(6, 4, generator=g) < 0.5
    pos[0], pos[1] = False, True                                        # both empty cases
    for rescale in (True, False):
        assert torch.allclose(oracles.vs2pp_eq5(x, nbrs, pos, 1.5, 2.1, rescale=rescale),
                              oracles.vs2pp_gathered(x, nbrs, pos, 1.5, 2.1, rescale), atol=1e-6)
