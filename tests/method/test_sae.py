"""TopKSAE (vs2mini/method/sae.py): hand-computed encode/decode, top-k invariants, sparse vs dense paths, gradient parity
of the custom sparse backward, FVU known answers, save/load and input validation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vs2mini.method.sae_file import load_sae, read_sae_file, save_sae
from saes import pm_identity_sae  # noqa: F401  (tests/saes.py)
from vs2mini.method.sae import SAE_FORMAT, TopKSAE
from vs2mini.method.train import batch_fvu


def random_sae(d=16, n=64, k=4, seed=0, scale_b=0.3):
    """A random SAE with non-zero biases (so b_pre and b_enc matter in every check)."""
    g = torch.Generator().manual_seed(seed)
    sae = TopKSAE(d, n, k, seed=seed)
    with torch.no_grad():
        sae.b_enc.copy_(scale_b * torch.randn(n, generator=g))
        sae.b_pre.copy_(torch.randn(d, generator=g))
        sae.W_dec.add_(0.2 * torch.randn(n, d, generator=g))
        sae.normalize_decoder()
    return sae


# ------------------------------------------------------------------------------------------ hand-made weights
X_HAND = torch.tensor([[3., 2, -1], [1, -1, 4]])


def test_encode_hand_weights(hand_sae):
    # row 0: x - b_pre = (2, 2, -1); W_enc(.) + b_enc = (2, 2.5, -1, 3); ReLU -> (2, 2.5, 0, 3); top-2 -> {3: 3, 1: 2.5}
    # row 1: x - b_pre = (0, -1, 4); W_enc(.) + b_enc = (0, -0.5, 4, -2); ReLU -> (0, 0, 4, 0); top-2 -> {2: 4} + a 0
    pre = hand_sae.pre_acts(X_HAND)
    assert torch.allclose(pre, torch.tensor([[2., 2.5, 0, 3], [0, 0, 4, 0]]))
    z = hand_sae.encode(X_HAND)
    assert torch.allclose(z, torch.tensor([[0., 2.5, 0, 3], [0, 0, 4, 0]]))
    vals, idx = hand_sae.encode_sparse(X_HAND)
    assert vals.shape == idx.shape == (2, 2)
    assert dict(zip(idx[0].tolist(), vals[0].tolist())) == {1: 2.5, 3: 3.0}
    assert 2 in idx[1].tolist() and sorted(vals[1].tolist()) == [0.0, 4.0]


def test_decode_hand_weights(hand_sae):
    # row 0: 2.5 * e1 + 3 * (0.6, 0.8, 0) + (1, 0, 0) = (2.8, 4.9, 0)
    # row 1: 4 * e2 + (1, 0, 0) = (1, 0, 4)
    want = torch.tensor([[2.8, 4.9, 0.0], [1.0, 0.0, 4.0]])
    x_hat, z = hand_sae(X_HAND)
    assert torch.allclose(x_hat, want, atol=1e-6)
    assert torch.allclose(hand_sae.reconstruct(X_HAND), want, atol=1e-6)
    vals, idx = hand_sae.encode_sparse(X_HAND)
    assert torch.allclose(hand_sae.decode(vals, idx), want, atol=1e-6)
    assert torch.allclose(hand_sae.decode(z, bias=False), want - torch.tensor([1.0, 0, 0]), atol=1e-6)


def test_decode_dense_hand_codes(hand_sae):
    z = torch.tensor([[1., 0, 0, 2], [0, -1, 0.5, 0]])
    # (1, 0, 0) + 2 (0.6, 0.8, 0) + b_pre = (3.2, 1.6, 0);  -(0, 1, 0) + 0.5 (0, 0, 1) + b_pre = (1, -1, 0.5)
    assert torch.allclose(hand_sae.decode(z), torch.tensor([[3.2, 1.6, 0], [1, -1, 0.5]]), atol=1e-6)


# ------------------------------------------------------------------------------------------- top-k invariants
def test_exactly_k_nonnegative_codes_per_row():
    sae = random_sae(d=16, n=64, k=5)
    x = torch.randn(200, 16) * 2 + sae.b_pre
    vals, idx = sae.encode_sparse(x)
    assert vals.shape == idx.shape == (200, 5)
    assert (vals >= 0).all()
    assert all(len(set(r)) == 5 for r in idx.tolist())            # k distinct latents per row
    pre = sae.pre_acts(x)
    assert ((pre > 0).sum(1) >= 5).all()                          # every row has >= k positive pre-acts ...
    z = sae.encode(x)
    assert ((z != 0).sum(1) == 5).all()                            # ... so exactly k non-zeros
    assert (z >= 0).all()
    # the selected values are the k largest pre-acts (as a multiset)
    assert torch.allclose(vals.sort(1).values, pre.topk(5, dim=1).values.sort(1).values)


def test_ties_still_give_exactly_k_codes():
    # all 8 latents have the same encoder row -> all pre-acts are equal (a k-way tie at every position)
    d, n, k = 4, 8, 3
    sae = TopKSAE(d, n, k)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        sae.W_enc.copy_(torch.ones(n, d))
        sae.W_dec.copy_(F.normalize(torch.randn(n, d, generator=g), dim=-1))
        sae.b_pre.zero_()
        sae.b_enc.zero_()
    x = torch.rand(10, d) + 0.1                                    # sum(x) > 0: every pre-act = sum(x) > 0
    vals, idx = sae.encode_sparse(x)
    assert all(len(set(r)) == k for r in idx.tolist())
    assert torch.allclose(vals, x.sum(1, keepdim=True).expand(-1, k))
    z = sae.encode(x)
    assert ((z != 0).sum(1) == k).all()
    # whichever latents won the tie, the reconstruction is the sum of their decoder rows times the common value
    want = torch.stack([x[i].sum() * sae.W_dec[idx[i]].sum(0) for i in range(10)])
    assert torch.allclose(sae.decode(vals, idx), want, atol=1e-5)
    assert torch.allclose(sae.decode(z), want, atol=1e-5)


def test_relu_before_topk_negative_preacts_never_selected_positive():
    # pre-acts (1, -5, -0.2, 0.3): "largest |value|" would pick -5; ReLU-then-top-k picks 1 and 0.3
    sae = TopKSAE(4, 4, 2)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(4))
        sae.W_dec.copy_(torch.eye(4))
        sae.b_enc.zero_()
        sae.b_pre.zero_()
    x = torch.tensor([[1.0, -5.0, -0.2, 0.3]])
    z = sae.encode(x)
    assert torch.equal(z, torch.tensor([[1.0, 0, 0, 0.3]]))
    # all pre-acts negative: codes are all zero and the reconstruction is b_pre
    with torch.no_grad():
        sae.b_pre.copy_(torch.tensor([0.5, -0.5, 1.0, 2.0]))
    x = sae.b_pre.detach() - torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    vals, idx = sae.encode_sparse(x)
    assert (vals == 0).all()
    assert torch.equal(sae.encode(x), torch.zeros(1, 4))
    assert torch.allclose(sae.reconstruct(x), sae.b_pre.detach()[None])


def test_sparse_path_equals_dense_path():
    sae = random_sae(d=16, n=64, k=4, seed=3)
    x = torch.randn(100, 16) + sae.b_pre
    vals, idx = sae.encode_sparse(x)
    z = sae.encode(x)
    assert torch.allclose(z.gather(1, idx), vals)
    assert torch.allclose(sae.decode(vals, idx), sae.decode(z), atol=1e-6)
    x_hat, z2 = sae(x)
    assert torch.equal(z2, z)
    assert torch.allclose(sae.reconstruct(x), x_hat, atol=1e-6)


def test_forward_matches_naive_reference():
    sae = random_sae(d=16, n=64, k=4, seed=4)
    x = torch.randn(32, 16)
    with torch.no_grad():
        pre = torch.relu((x - sae.b_pre) @ sae.W_enc.T + sae.b_enc)
        v, i = pre.topk(4, dim=1)
        z = torch.zeros(32, 64).scatter(1, i, v)
        x_hat = z @ sae.W_dec + sae.b_pre
    assert torch.allclose(sae.reconstruct(x), x_hat, atol=1e-6)
    vals, _ = sae.encode_sparse(x)
    assert torch.allclose(vals.sort(1).values, v.sort(1).values, atol=1e-6)


# -------------------------------------------------------------------------------------------- gradient parity
@pytest.mark.parametrize("seed,b_enc_shift", [(0, 0.0), (1, 0.0), (2, -2.5)])
def test_sparse_backward_matches_dense_autograd(seed, b_enc_shift):
    """b_enc_shift < 0 leaves some rows with fewer than k positive pre-acts: zero-valued selected codes must get
    no gradient (ReLU), exactly as in dense autograd."""
    d, n, k, B = 16, 64, 4, 32
    sae = random_sae(d, n, k, seed=seed)
    with torch.no_grad():
        sae.b_enc.add_(b_enc_shift)
    g = torch.Generator().manual_seed(100 + seed)
    x0 = torch.randn(B, d, generator=g) * 1.5 + sae.b_pre.detach()
    R = torch.randn(B, n, generator=g)                              # random linear functional of the codes

    # package path: custom sparse encoder backward + embedding_bag decoder
    x1 = x0.clone().requires_grad_(True)
    vals, idx = sae.encode_sparse(x1)
    z1 = torch.zeros(B, n).scatter(1, idx, vals)
    loss1 = batch_fvu(x1, sae.decode(vals, idx)) + (R * z1).sum()
    loss1.backward()
    pkg = {name: p.grad.clone() for name, p in sae.named_parameters()}
    pkg["x"] = x1.grad.clone()

    # naive dense reference with cloned parameters
    ref_p = {name: p.detach().clone().requires_grad_(True) for name, p in sae.named_parameters()}
    x2 = x0.clone().requires_grad_(True)
    pre = torch.relu(F.linear(x2 - ref_p["b_pre"], ref_p["W_enc"], ref_p["b_enc"]))
    v, i = pre.topk(k, dim=-1)
    z2 = torch.zeros(B, n).scatter(1, i, v)
    x_hat = z2 @ ref_p["W_dec"] + ref_p["b_pre"]
    loss2 = batch_fvu(x2, x_hat) + (R * z2).sum()
    loss2.backward()

    assert torch.allclose(loss1, loss2, atol=1e-6)
    if b_enc_shift < 0:
        assert (vals == 0).any()                                    # the case this parameter is for
    for name in ("W_enc", "b_enc", "W_dec", "b_pre"):
        assert torch.allclose(pkg[name], ref_p[name].grad, atol=1e-5), name
        assert pkg[name].abs().max() > 0, name                     # the check is not vacuous
    assert torch.allclose(pkg["x"], x2.grad, atol=1e-5)


def test_sparse_backward_without_input_grad():
    sae = random_sae(seed=5)
    x = torch.randn(8, 16)
    vals, idx = sae.encode_sparse(x)
    vals.sum().backward()
    # d/dW_enc[j] of sum of selected ReLU(pre) = sum over rows where j was selected (and positive) of (x - b_pre)
    want = torch.zeros_like(sae.W_enc)
    xc = (x - sae.b_pre).detach()
    for r in range(8):
        for j, v in zip(idx[r].tolist(), vals[r].tolist()):
            if v > 0:
                want[j] += xc[r]
    assert torch.allclose(sae.W_enc.grad, want, atol=1e-5)


# ------------------------------------------------------------------------------------------------------ FVU
def test_fvu_zero_for_exact_reconstruction():
    sae = pm_identity_sae(3, 3)
    x = torch.randn(50, 3) + 0.05 * torch.sign(torch.randn(50, 3))
    assert torch.allclose(sae.reconstruct(x), x, atol=1e-6)
    assert sae.fvu(x) == pytest.approx(0.0, abs=1e-12)


def test_fvu_one_for_mean_reconstruction():
    x = torch.randn(40, 5) * 3 + 2
    sae = TopKSAE(5, 8, 2)
    with torch.no_grad():
        sae.W_enc.zero_()                  # all pre-acts 0 -> codes 0 -> x_hat = b_pre
        sae.b_enc.zero_()
        sae.b_pre.copy_(x.double().mean(0).float())
    assert torch.allclose(sae.reconstruct(x), x.mean(0).expand_as(x), atol=1e-6)
    assert sae.fvu(x) == pytest.approx(1.0, abs=1e-6)


def test_fvu_2x2_worked_example():
    # [I; -I] SAE with k = 1 keeps only the largest |x_i|: (1, 2) -> (0, 2), (3, 4) -> (0, 4).
    # SSE = 1 + 9 = 10; mean = (2, 3); SST = (1 + 1) + (1 + 1) = 4; FVU = 2.5 (worse than the mean).
    sae = pm_identity_sae(2, 1)
    x = torch.tensor([[1., 2.], [3., 4.]])
    assert torch.allclose(sae.reconstruct(x), torch.tensor([[0., 2.], [0., 4.]]))
    assert sae.fvu(x) == pytest.approx(2.5, abs=1e-9)
    assert sae.fvu(x, chunk=1) == pytest.approx(2.5, abs=1e-9)


def test_fvu_invariant_to_common_shift_and_scale():
    # x' = s x + t with SAE' (b_pre' = s b_pre + t, b_enc' = s b_enc): pre' = s pre, codes' = s codes,
    # x_hat' = s x_hat + t, so both ||x - x_hat||^2 and ||x - mean||^2 scale by s^2.
    sae = random_sae(d=8, n=32, k=3, seed=7)
    x = torch.randn(300, 8) + sae.b_pre.detach()
    s, t = 3.7, torch.randn(8) * 5
    sae2 = TopKSAE(8, 32, 3)
    with torch.no_grad():
        sae2.W_enc.copy_(sae.W_enc)
        sae2.W_dec.copy_(sae.W_dec)
        sae2.b_enc.copy_(s * sae.b_enc)
        sae2.b_pre.copy_(s * sae.b_pre + t)
    assert torch.allclose(sae2.reconstruct(s * x + t), s * sae.reconstruct(x) + t, atol=1e-4)
    f1, f2 = sae.fvu(x), sae2.fvu(s * x + t)
    assert 0.05 < f1 < 5
    assert f2 == pytest.approx(f1, rel=1e-5)


def test_fvu_chunked_equals_one_shot():
    sae = random_sae(seed=8)
    x = torch.randn(103, 16)
    assert sae.fvu(x, chunk=7) == pytest.approx(sae.fvu(x), rel=1e-6)   # float32 GEMMs differ by batch size
    # ... and equals the batch FVU formula
    assert sae.fvu(x) == pytest.approx(batch_fvu(x, sae.reconstruct(x)).item(), rel=1e-5)


def test_fvu_constant_data_raises():
    sae = random_sae(seed=9)
    with pytest.raises(ValueError, match="constant"):
        sae.fvu(torch.ones(5, 16))


# ------------------------------------------------------------------------------------------------------ init
def test_init_invariants_and_seed():
    a, b, c = TopKSAE(16, 64, 4, seed=1), TopKSAE(16, 64, 4, seed=1), TopKSAE(16, 64, 4, seed=2)
    assert torch.allclose(a.W_dec.norm(dim=-1), torch.ones(64), atol=1e-6)
    assert torch.allclose(F.cosine_similarity(a.W_dec, a.W_enc, dim=-1), torch.ones(64), atol=1e-6)
    assert torch.equal(a.b_enc, torch.zeros(64)) and torch.equal(a.b_pre, torch.zeros(16))
    assert torch.equal(a.W_enc, b.W_enc) and not torch.equal(a.W_enc, c.W_enc)
    bound = 1 / 16 ** 0.5
    assert a.W_enc.abs().max() <= bound


def test_normalize_decoder():
    sae = random_sae(seed=2)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(64, 1) * 3 + 0.1)
    direction = F.normalize(sae.W_dec.detach().clone(), dim=-1)
    sae.normalize_decoder()
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(64), atol=1e-6)
    assert torch.allclose(sae.W_dec, direction, atol=1e-6)


# ------------------------------------------------------------------------------------------------- save/load
def test_save_load_round_trip(tmp_path):
    sae = random_sae(d=8, n=24, k=3, seed=11)
    path = save_sae(sae, tmp_path / "sub" / "sae.pt", history={"fvu": [0.5, 0.25]}, note="hello")
    assert path.exists() and not (tmp_path / "sub" / "sae.pt.tmp").exists()
    loaded = load_sae(path)
    assert loaded.config() == sae.config() == {"format": SAE_FORMAT, "d_in": 8, "n_latents": 24, "k": 3}
    for (n1, p1), (n2, p2) in zip(sae.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    x = torch.randn(20, 8)
    assert torch.equal(loaded.reconstruct(x), sae.reconstruct(x))
    assert torch.equal(loaded.encode(x), sae.encode(x))
    extra = torch.load(path, weights_only=True)["extra"]
    assert extra == {"history": {"fvu": [0.5, 0.25]}, "note": "hello"}


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a vs2mini SAE file"):
        load_sae(other)
    wrong = tmp_path / "wrong.pt"
    torch.save({"config": {"format": "some-other-sae", "d_in": 3, "n_latents": 4, "k": 2}, "state_dict": {}}, wrong)
    with pytest.raises(ValueError, match="some-other-sae"):
        load_sae(wrong)
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(ValueError):
        load_sae(tensor_file)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file at all" * 10)
    with pytest.raises(ValueError, match="not a readable vs2mini SAE file"):
        load_sae(garbage)
    with pytest.raises(FileNotFoundError):
        load_sae(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------------------------ errors
def test_constructor_errors():
    with pytest.raises(ValueError, match=r"k=5 is larger than the dictionary.*k <= n_latents"):
        TopKSAE(3, 4, 5)
    for args, name in (((0, 4, 2), "d_in"), ((3, -1, 1), "n_latents"), ((3, 4, 0), "k"), ((3.0, 4, 2), "d_in")):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            TopKSAE(*args)


def test_input_errors(hand_sae):
    with pytest.raises(ValueError, match=r"shape \(N, 3\).*\(2, 4\)"):
        hand_sae.encode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        hand_sae.encode(torch.zeros(3))                       # 1-D input
    with pytest.raises(ValueError, match="floating-point"):
        hand_sae.encode(torch.zeros(2, 3, dtype=torch.long))
    bad = torch.zeros(2, 3)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN.*recompute"):
        hand_sae.encode(bad)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        hand_sae.reconstruct(bad)
    with pytest.raises(ValueError, match="NaN"):
        hand_sae.fvu(bad)


def test_decode_shape_errors(hand_sae):
    with pytest.raises(ValueError, match=r"dense codes \(N, 4\)"):
        hand_sae.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="must both be"):
        hand_sae.decode(torch.zeros(2, 2), torch.zeros(2, 3, dtype=torch.long))
