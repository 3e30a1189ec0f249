"""Steering rules (vs2mini/method/steer.py): VS2 closed form (paper v3 Prop. 3.1, eq. 3), identities, rescaling, hand cases, the
reconstruction baselines, VS2++ (v3 §3.3, eq. 5: the package's one form, the sparse product over the bank, checked
against the literal reading of tests/oracles.py) and the FVU gate (v3 §4.3)."""
from __future__ import annotations

import math

import pytest
import torch

import oracles  # tests/oracles.py (tests/ is on sys.path, conftest.py)
from vs2mini.method import steer
from vs2mini.method.sae import TopKSAE


def random_sae(d=16, n=64, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    sae = TopKSAE(d, n, k, seed=seed)
    with torch.no_grad():
        sae.b_enc.copy_(0.3 * torch.randn(n, generator=g))
        sae.b_pre.copy_(torch.randn(d, generator=g) * 2)
    return sae


def data(sae, N=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, sae.d_in, generator=g) * 1.5 + sae.b_pre.detach()


# ---------------------------------------------------------------------------------------------------------- VS2
@pytest.mark.parametrize("gamma,lam", [(1.5, 2.1), (3.0, 0.5), (1.2, 7.0)])
def test_vs2_closed_form(gamma, lam):
    """x + lam v = x + alpha (x - b_pre) + alpha eps(x), alpha = lam (gamma - 1), eps = x_tilde - x (v3 Prop. 3.1)."""
    sae = random_sae()
    x = data(sae)
    alpha = lam * (gamma - 1)
    x_tilde = sae.reconstruct(x).detach()
    want = x + alpha * (x - sae.b_pre.detach()) + alpha * (x_tilde - x)
    got = steer.vs2(x, sae, gamma, lam, rescale=False)
    assert torch.allclose(got, want, atol=1e-5)
    # ... and the rescaled output is the same direction with the norm of x
    resc = steer.vs2(x, sae, gamma, lam)
    assert torch.allclose(resc, want * (x.norm(dim=-1, keepdim=True) / want.norm(dim=-1, keepdim=True)), atol=1e-5)


def test_vs2_vector_is_gamma_minus_one_times_decoded_code():
    sae = random_sae(seed=2)
    x = data(sae)
    v = steer.vs2_vector(x, sae, 2.5)
    assert torch.allclose(v, 1.5 * (sae.decode(sae.encode(x)) - sae.b_pre).detach(), atol=1e-5)
    # v = D(gamma c) - D(c) (the paper's definition, bias cancels)
    assert torch.allclose(v, steer.sae_reconstruction(x, sae, 2.5) - steer.sae_reconstruction(x, sae, 1.0),
                          atol=1e-5)


@pytest.mark.parametrize("rescale", [True, False])
def test_vs2_identities(rescale):
    sae = random_sae(seed=3)
    x = data(sae)
    assert torch.allclose(steer.vs2(x, sae, gamma=1.0, lam=2.1, rescale=rescale), x, atol=1e-6)
    assert torch.allclose(steer.vs2(x, sae, gamma=1.5, lam=0.0, rescale=rescale), x, atol=1e-6)


def test_rescale_keeps_row_norms():
    sae = random_sae(seed=4)
    x = data(sae)
    y = steer.vs2(x, sae, 2.0, 3.0)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)                      # it did steer
    assert torch.allclose(steer.rescale_to(torch.tensor([[3., 4.]]), torch.tensor([[0., 10.]])),
                          torch.tensor([[6., 8.]]))


def test_rescale_does_not_change_prediction_after_layernorm():
    """LayerNorm is invariant to a positive rescaling of its input (up to eps), so both forms predict the same."""
    torch.manual_seed(0)
    sae = random_sae(d=32, n=128, k=8, seed=5)
    x = data(sae, N=300) * 3
    ln = torch.nn.LayerNorm(32)
    with torch.no_grad():
        ln.weight.copy_(torch.rand(32) + 0.5)
        ln.bias.copy_(torch.randn(32))
    head = torch.randn(32, 10)
    with torch.no_grad():
        a = ln(steer.vs2(x, sae, 1.5, 2.1, rescale=True))
        b = ln(steer.vs2(x, sae, 1.5, 2.1, rescale=False))
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.equal((a @ head).argmax(-1), (b @ head).argmax(-1))


def test_vs2_hand_weights(hand_sae):
    # x = (3, 2, -1): codes {1: 2.5, 3: 3}, W_dec^T c = 2.5 e1 + 3 (0.6, 0.8, 0) = (1.8, 4.9, 0)
    x = torch.tensor([[3., 2, -1]])
    v = steer.vs2_vector(x, hand_sae, gamma=2.0)
    assert torch.allclose(v, torch.tensor([[1.8, 4.9, 0.0]]), atol=1e-6)
    # gamma 2, lam 1: y = (4.8, 6.9, -1), ||x|| = sqrt(14), ||y|| = sqrt(23.04 + 47.61 + 1) = sqrt(71.65)
    y = torch.tensor([[4.8, 6.9, -1.0]])
    assert torch.allclose(steer.vs2(x, hand_sae, 2.0, 1.0, rescale=False), y, atol=1e-6)
    assert torch.allclose(steer.vs2(x, hand_sae, 2.0, 1.0), y * math.sqrt(14 / 71.65), atol=1e-6)
    # paper setting gamma 1.5, lam 2.1: alpha = 1.05, y = x + 1.05 (1.8, 4.9, 0) = (4.89, 7.145, -1)
    assert torch.allclose(steer.vs2(x, hand_sae, 1.5, 2.1, rescale=False), torch.tensor([[4.89, 7.145, -1.0]]),
                          atol=1e-5)


def test_apply_steering():
    x, v = torch.tensor([[1., 0.]]), torch.tensor([[0., 1.]])
    assert torch.allclose(steer.apply_steering(x, v, 2.0, rescale=False), torch.tensor([[1., 2.]]))
    assert torch.allclose(steer.apply_steering(x, v, 2.0), torch.tensor([[1., 2.]]) / math.sqrt(5))


# ---------------------------------------------------------------------------------------- reconstruction rows
def test_sae_reconstruction_baselines(hand_sae):
    sae = random_sae(seed=6)
    x = data(sae)
    assert torch.allclose(steer.sae_reconstruction(x, sae), sae.reconstruct(x), atol=1e-6)
    # hand: D(gamma c) = gamma W_dec^T c + b_pre = 1.5 (1.8, 4.9, 0) + (1, 0, 0) = (3.7, 7.35, 0)
    xh = torch.tensor([[3., 2, -1]])
    assert torch.allclose(steer.sae_reconstruction(xh, hand_sae, 1.5), torch.tensor([[3.7, 7.35, 0.0]]), atol=1e-6)
    assert torch.allclose(steer.sae_reconstruction(xh, hand_sae), torch.tensor([[2.8, 4.9, 0.0]]), atol=1e-6)


# ------------------------------------------------------------------------------------------------------- VS2++
def vs2pp_on_codes(x, sae, codes, pos, gamma=1.5, lam=2.1, rescale=True):
    """The package's one VS2++ form on hand-made neighbour codes (N, M, n): each query's M neighbours become M rows
    of a bank of decoded directions (no b_pre), indexed 0..N*M-1."""
    N, M, n = codes.shape
    bank_dirs = sae.decode(codes.reshape(N * M, n), bias=False).detach()
    return steer.vs2pp_from_bank(x, bank_dirs, torch.arange(N * M).view(N, M), pos, gamma, lam, rescale)


def test_vs2pp_identical_means_is_identity():
    sae = random_sae(seed=7)
    x = data(sae, N=5)
    c = torch.relu(torch.randn(5, 1, 64))
    codes = torch.cat([c, c, c, c], dim=1)                          # (5, 4, n): same code for everyone
    pos = torch.tensor([[True, False, True, False]] * 5)
    for rescale in (True, False):
        assert torch.allclose(vs2pp_on_codes(x, sae, codes, pos, 1.5, 2.1, rescale), x, atol=1e-5)


def test_vs2pp_empty_negatives_uses_positive_mean():
    sae = random_sae(seed=8)
    x = data(sae, N=6)
    codes = torch.relu(torch.randn(6, 3, 64))
    pos = torch.ones(6, 3, dtype=torch.bool)
    cbar = codes.mean(1)
    v = 0.5 * (cbar @ sae.W_dec.detach())                           # (gamma - 1) W_dec^T cbar+
    for rescale in (True, False):
        want = steer.apply_steering(x, v, 2.1, rescale)
        assert torch.allclose(vs2pp_on_codes(x, sae, codes, pos, 1.5, 2.1, rescale), want, atol=1e-5)


def test_vs2pp_empty_positives_leaves_row_unsteered():
    sae = random_sae(seed=9)
    x = data(sae, N=3)
    codes = torch.relu(torch.randn(3, 4, 64))
    pos = torch.tensor([[False] * 4, [True, False, False, True], [False] * 4])
    out = vs2pp_on_codes(x, sae, codes, pos, 1.5, 2.1)
    assert torch.allclose(out[0], x[0], atol=1e-6) and torch.allclose(out[2], x[2], atol=1e-6)
    assert not torch.allclose(out[1], x[1], atol=1e-3)


def test_vs2pp_hand_case(hand_sae):
    # one positive (c+ = e0) and one negative (c- = 2 e3): v = 0.5 [(1, 0, 0) - 2 (0.6, 0.8, 0)] = (-0.1, -0.8, 0)
    x = torch.tensor([[3., 2, -1]])
    codes = torch.tensor([[[1., 0, 0, 0], [0, 0, 0, 2]]])
    pos = torch.tensor([[True, False]])
    want = torch.tensor([[2.8, 0.4, -1.0]])
    out = vs2pp_on_codes(x, hand_sae, codes, pos, gamma=1.5, lam=2.0, rescale=False)
    assert torch.allclose(out, want, atol=1e-6)
    # the neighbour order does not matter
    out2 = vs2pp_on_codes(x, hand_sae, codes.flip(1), pos.flip(1), gamma=1.5, lam=2.0, rescale=False)
    assert torch.allclose(out2, out, atol=1e-6)
    # the literal reading of eq. 5 (tests/oracles.py) on the same case
    assert torch.allclose(oracles.vs2pp_eq5(x, codes, pos, 1.5, 2.0, hand_sae.W_dec.detach(), rescale=False),
                          want, atol=1e-6)


def test_vs2pp_shape_errors():
    sae = random_sae(seed=10)
    x = data(sae, N=2)
    bank = torch.zeros(8, 16)
    with pytest.raises(ValueError, match="must match"):
        steer.vs2pp_from_bank(x, bank, torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="must match"):
        steer.vs2pp_from_bank(x, bank, torch.zeros(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="must match"):
        steer.vs2pp_from_bank(x, bank, torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="d = 16"):                                     # wrong direction width
        steer.vs2pp_from_bank(x, bank[:, :15], torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))


# -------------------------------------------------------------------------------------------------- FVU gate
def test_per_sample_fvu_hand_case(hand_sae):
    # x_hat = (2.8, 4.9, 0) and (1, 0, 4); mu = (1, 0, 0)
    # row 0: err = 0.04 + 8.41 + 1 = 9.45, ||x - mu||^2 = 4 + 4 + 1 = 9  -> 1.05
    # row 1: err = 0 + 1 + 0 = 1,          ||x - mu||^2 = 0 + 1 + 16 = 17 -> 1/17
    x = torch.tensor([[3., 2, -1], [1, -1, 4]])
    f = steer.per_sample_fvu(x, hand_sae, torch.tensor([1., 0, 0]))
    assert torch.allclose(f, torch.tensor([1.05, 1 / 17]), atol=1e-6)


def test_fvu_threshold_is_quantile():
    f = torch.arange(1, 11, dtype=torch.float32) / 10               # 0.1 .. 1.0
    assert steer.fvu_threshold(f, 0.5) == pytest.approx(0.55)       # linear interpolation at position 4.5
    assert steer.fvu_threshold(f, 1.0) == pytest.approx(1.0)
    assert steer.fvu_threshold(f[torch.randperm(10)], 0.9) == pytest.approx(0.91)
    for q in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            steer.fvu_threshold(f, q)


def test_gate_and_coverage():
    x = torch.zeros(4, 2)
    xs = torch.ones(4, 2)
    fvu = torch.tensor([0.1, 0.5, 0.9, 0.50001])
    out, mask = steer.gate(x, xs, fvu, tau=0.5)
    assert mask.tolist() == [True, True, False, False]               # steer where FVU <= tau
    assert torch.equal(out, torch.tensor([[1., 1], [1, 1], [0, 0], [0, 0]]))
    assert mask.float().mean().item() == pytest.approx(0.5)
    # tau from the q-quantile of the training FVU: about a fraction q of similar data is steered
    train = torch.rand(10000, generator=torch.Generator().manual_seed(0))
    tau = steer.fvu_threshold(train, 0.9)
    _, m = steer.gate(torch.zeros(10000, 1), torch.ones(10000, 1), train, tau)
    assert m.float().mean().item() == pytest.approx(0.9, abs=1e-3)


def test_vs2pp_equals_the_literal_eq5():
    """The sparse product over the bank = eq. 5 read literally, one query at a time, from the neighbours' codes
    (tests/oracles.py): linearity of decoding, incl. empty S+, empty S-."""
    sae = random_sae(seed=11)
    x = data(sae, N=4)
    codes = torch.relu(torch.randn(4, 5, 64))
    pos = torch.tensor([[True, False, True, False, False], [True] * 5, [False] * 5, [False, True, False, False, True]])
    for rescale in (True, False):
        assert torch.allclose(vs2pp_on_codes(x, sae, codes, pos, 1.5, 2.1, rescale),
                              oracles.vs2pp_eq5(x, codes, pos, 1.5, 2.1, sae.W_dec.detach(), rescale), atol=1e-5)


def test_vs2pp_weights_hand_case():
    pos = torch.tensor([[True, False, False, True],       # |S+| = 2, |S-| = 2
                        [True, True, True, True],         # S- empty: positives only
                        [False, False, False, False],     # S+ empty: zero row
                        [False, True, False, False]])     # |S+| = 1, |S-| = 3
    want = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.25] * 4, [0.0] * 4, [-1 / 3, 1.0, -1 / 3, -1 / 3]])
    assert torch.allclose(steer.vs2pp_weights(pos), want, atol=1e-7)


def test_vs2pp_from_bank_hand_case(hand_sae):
    # the hand case of test_vs2pp_hand_case, from a bank with rows that are not neighbours: rows 1 (e0) and 3 (2 e3)
    # are the neighbours
    bank_codes = torch.tensor([[0., 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2]])
    bank_dirs = hand_sae.decode(bank_codes, bias=False)
    x = torch.tensor([[3., 2, -1]])
    out = steer.vs2pp_from_bank(x, bank_dirs, torch.tensor([[1, 3]]), torch.tensor([[True, False]]),
                                gamma=1.5, lam=2.0, rescale=False)
    assert torch.allclose(out, torch.tensor([[2.8, 0.4, -1.0]]), atol=1e-6)


def test_vs2pp_from_bank_equals_gathered_directions():
    """One sparse product over the bank = eq. 5 on the gathered (Q, M) neighbour codes, and = the gathered (Q, M, d)
    directions, incl. empty S+, empty S-, a repeated index."""
    sae = random_sae(seed=12)
    g = torch.Generator().manual_seed(3)
    bank_codes = torch.relu(torch.randn(30, 64, generator=g))                           # (B, n)
    bank_dirs = bank_codes @ sae.W_dec.detach()                                         # (B, d)
    x = data(sae, N=6)
    nn_idx = torch.randint(0, 30, (6, 5), generator=g)
    nn_idx[5] = torch.tensor([7, 7, 2, 7, 9])                  # the same bank row twice in S+ and once in S-
    pos = torch.tensor([[True, False, True, False, False], [True] * 5, [False] * 5,
                        [False, True, False, False, True], [False, False, False, False, True],
                        [True, True, False, False, True]])
    for rescale in (True, False):
        want = oracles.vs2pp_eq5(x, bank_codes[nn_idx], pos, 1.5, 2.1, sae.W_dec.detach(), rescale)
        got = steer.vs2pp_from_bank(x, bank_dirs, nn_idx, pos, 1.5, 2.1, rescale)
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(got, oracles.vs2pp_gathered(x, bank_dirs[nn_idx], pos, 1.5, 2.1, rescale), atol=1e-5)
    assert torch.allclose(got[2], x[2], atol=1e-6)              # S+ empty: unsteered
    with pytest.raises(ValueError, match="must match"):
        steer.vs2pp_from_bank(x, bank_dirs, nn_idx[:, :4], pos)
    with pytest.raises(ValueError, match="must match"):
        steer.vs2pp_from_bank(x, bank_dirs[:, :8], nn_idx, pos)


def test_steering_defaults_written_once():
    """The one pair of defaults: the paper's CIFAR-100 B/32 optimum (v3 App. B), read by every profile."""
    from vs2mini import paper
    from vs2mini.config import PROFILES
    assert (steer.GAMMA, steer.LAM) == (paper.SENSITIVITY_OPTIMUM["gamma"], paper.SENSITIVITY_OPTIMUM["lam"])
    assert all((p.steer.gamma, p.steer.lam) == (steer.GAMMA, steer.LAM) for p in PROFILES.values())
