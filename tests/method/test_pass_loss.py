"""PASS prototype-alignment loss (vs2mini/method/pass_loss.py, paper v3 App. L eq. 7 and the ratio variant)."""
from __future__ import annotations

import pytest
import torch


from vs2mini.method.pass_loss import class_means, pass_loss, prototype_directions
from vs2mini.method.train import train_sae


def test_class_means_by_hand():
    z = torch.tensor([[1., 2], [3., 4], [10., 0], [5., 6]])
    labels = torch.tensor([0, 0, 2, 0])
    m = class_means(z, labels)
    assert m.shape == (3, 2)
    assert torch.allclose(m, torch.tensor([[3., 4], [0., 0], [10., 0]]))   # class 1 absent -> zeros
    m5 = class_means(z, labels, n_classes=5)
    assert m5.shape == (5, 2) and torch.equal(m5[3:], torch.zeros(2, 2))


# B = 4, two classes, n = 3, k = 1:  z = (1,0,0), (3,0,0) [class 0]; (0,2,0), (0,0,2) [class 1]
VALS = torch.tensor([[1.], [3.], [2.], [2.]])
IDX = torch.tensor([[0], [0], [1], [2]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_pass_loss_hand_case_eq7():
    # eq. 7: class means (2,0,0) and (0,1,1); squared distances 1 + 1 + 2 + 2 = 6, mean over B = 4 samples -> 1.5
    assert pass_loss(VALS, IDX, LABELS, 3, variant="eq7").item() == pytest.approx(1.5)
    assert pass_loss(VALS, IDX, LABELS, 3).item() == pytest.approx(1.5)                  # eq7 is the default
    # codes equal to their class mean -> 0
    assert pass_loss(torch.tensor([[2.], [2.], [1.], [1.]]), torch.tensor([[0], [0], [1], [1]]), LABELS, 3).item() \
        == pytest.approx(0.0)
    # in the squared units of the codes: doubling them quadruples the penalty
    assert pass_loss(2 * VALS, IDX, LABELS, 3).item() == pytest.approx(6.0)


def test_pass_loss_hand_case_ratio():
    # within 6 (as above); overall mean (1, .5, .5): total 0.5 + 4.5 + 3.5 + 3.5 = 12 -> 6 / 12 = 0.5
    assert pass_loss(VALS, IDX, LABELS, 3, variant="ratio").item() == pytest.approx(0.5)


def test_pass_loss_unknown_variant():
    with pytest.raises(ValueError, match="unknown PASS variant 'fisher'"):
        pass_loss(VALS, IDX, LABELS, 3, variant="fisher")


def test_pass_loss_gradient_hand_case_eq7():
    """dL/dz_i = (2/B)(z_i - zbar_{y_i}): the batch class means carry no gradient (deviations sum to zero)."""
    vals = VALS.clone().requires_grad_(True)
    pass_loss(vals, IDX, LABELS, 3, variant="eq7").backward()
    # row 0: 2/4 (1 - 2) = -0.5; row 1: 2/4 (3 - 2) = 0.5; rows 2, 3: 2/4 (2 - 1) = 0.5
    assert torch.allclose(vals.grad, torch.tensor([[-0.5], [0.5], [0.5], [0.5]]), atol=1e-6)


def test_pass_loss_gradient_hand_case_ratio():
    """With L = W / T (W within-class, T total squared deviations) the gradient through the means vanishes and the
    normaliser keeps its gradient: dL/dz = 2 (z - zbar_class) / T - L * 2 (z - zbar_all) / T."""
    vals = VALS.clone().requires_grad_(True)
    pass_loss(vals, IDX, LABELS, 3, variant="ratio").backward()
    # L = 0.5, T = 12, zbar_all = (1, .5, .5); at the selected entries:
    # row 0 (latent 0): 2(1-2)/12 - 0.5*2(1-1)/12 = -1/6      row 1 (latent 0): 2(3-2)/12 - 0.5*2(3-1)/12 = 0
    # row 2 (latent 1): 2(2-1)/12 - 0.5*2(2-.5)/12 = 1/24     row 3 (latent 2): same = 1/24
    assert torch.allclose(vals.grad, torch.tensor([[-1 / 6], [0.0], [1 / 24], [1 / 24]]), atol=1e-6)


def random_codes(seed=0, B=12, n=10, k=3):
    g = torch.Generator().manual_seed(seed)
    vals = torch.rand(B, k, generator=g).requires_grad_(True)
    idx = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(B)])
    return vals, idx, torch.arange(B) % 3


def test_pass_loss_gradient_random_case():
    B, n = 12, 10
    for variant in ("eq7", "ratio"):
        vals, idx, labels = random_codes()
        loss = pass_loss(vals, idx, labels, n, variant=variant)
        loss.backward()
        z = torch.zeros(B, n).scatter(1, idx, vals.detach())
        zbar = torch.stack([z[labels == c].mean(0) for c in range(3)])[labels]
        within, total = (z - zbar).pow(2).sum(), (z - z.mean(0)).pow(2).sum()
        if variant == "eq7":
            assert loss.item() == pytest.approx((within / B).item(), rel=1e-6)
            want = 2 * (z - zbar) / B
        else:
            L = (within / total).item()
            assert loss.item() == pytest.approx(L, rel=1e-6) and 0.0 <= L <= 1.0
            want = 2 * (z - zbar) / total - L * 2 * (z - z.mean(0)) / total
        assert torch.allclose(vals.grad, want.gather(1, idx), atol=1e-6), variant


def test_pass_loss_ratio_scale_free():
    vals, idx, labels = random_codes(seed=1)
    vals = vals.detach()
    assert pass_loss(7.5 * vals, idx, labels, 10, variant="ratio").item() == \
        pytest.approx(pass_loss(vals, idx, labels, 10, variant="ratio").item(), rel=1e-5)


def within_class_fraction(sae, X, y):
    vals, idx = sae.encode_sparse(X)
    return pass_loss(vals.detach(), idx, y, sae.n_latents, variant="ratio").item()


def pass_data():
    g = torch.Generator().manual_seed(0)
    C, d, N = 5, 16, 500
    y = torch.arange(N) % C
    X = torch.randn(C, d, generator=g)[y] + torch.randn(N, d, generator=g) + 2
    kw = dict(n_latents=64, k=4, epochs=10, batch_size=100, lr=3e-3, seed=0, progress=False, device="cpu")
    return X, y, kw


def test_pass_training_tightens_classes():
    X, y, kw = pass_data()
    plain, _ = train_sae(X, **kw)
    pas, hist = train_sae(X, labels=y, w_aux=0.8, pass_variant="ratio", **kw)
    f_plain, f_pass = within_class_fraction(plain, X, y), within_class_fraction(pas, X, y)
    assert f_pass < 0.8 * f_plain
    assert all(0 < v < 1 for v in hist["pass"])                       # a fraction: the ratio variant ran
    assert hist["loss"][-1] == pytest.approx(hist["fvu"][-1] + 0.8 * hist["pass"][-1], rel=1e-5)
    # labels alone (w_aux = 0) change nothing
    same, _ = train_sae(X, labels=y, w_aux=0.0, **kw)
    assert torch.equal(same.W_dec, plain.W_dec)


def test_pass_eq7_training_shrinks_codes():
    """The caveat at DEFAULT_PASS_VARIANT: eq. 7 (squared code units) also lowers its penalty by shrinking the
    codes, and FVU pays for it; the ratio variant is scale-free and keeps the codes. eq7 is the default."""
    X, y, kw = pass_data()
    norm = lambda sae: sae.encode_sparse(X)[0].norm(dim=1).mean().item()   # noqa: E731
    plain, _ = train_sae(X, **kw)
    eq7, hist = train_sae(X, labels=y, w_aux=0.8, **kw)                       # the default: eq7
    ratio, _ = train_sae(X, labels=y, w_aux=0.8, pass_variant="ratio", **kw)
    assert norm(eq7) < 0.6 * norm(plain) and norm(ratio) > 0.8 * norm(plain)
    assert eq7.fvu(X) > plain.fvu(X) + 0.1
    assert hist["pass"][-1] > 0 and hist["loss"][-1] == pytest.approx(hist["fvu"][-1] + 0.8 * hist["pass"][-1], rel=1e-5)
    with pytest.raises(ValueError, match="unknown pass_variant"):
        train_sae(X, labels=y, w_aux=0.8, pass_variant="eq8", **kw)


def test_prototype_directions_hand_case(hand_sae):
    # two classes; each direction is W_dec^T of its class's mean code, without b_pre
    g = torch.Generator().manual_seed(3)
    X = torch.randn(6, hand_sae.d_in, generator=g)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    z = hand_sae.encode(X).detach()
    want = torch.stack([z[y == c].mean(0) for c in (0, 1)]) @ hand_sae.W_dec.detach()
    got = prototype_directions(hand_sae, X, y)
    assert got.shape == (2, hand_sae.d_in)
    assert torch.allclose(got, want, atol=1e-6)
