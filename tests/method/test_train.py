"""train_sae and its parts (vs2mini/method/train.py): b_pre init, decoder constraint, LR schedule, batch FVU, AuxK
(as in EleutherAI sparsify's trainer), reproducibility, an end-to-end known answer, history and input errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vs2mini.method.sae import TopKSAE
from vs2mini.method.train import (auxk_loss, batch_fvu, epoch_batches, lr_lambda, n_batches, remove_parallel_grad, summary,
                                  train_sae, training_schedule)

REPO = Path(__file__).resolve().parents[2]
HIST_KEYS = {"step", "loss", "fvu", "auxk", "pass", "dead_frac", "l0", "lr"}


def gaussian_data(N=256, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, d, generator=g) * torch.linspace(0.5, 2, d) + 3 * torch.randn(d, generator=g)


# --------------------------------------------------------------------------------------------------- imports
@pytest.mark.parametrize("code", [
    "import vs2mini.method.train",
    "import torch; from vs2mini.method.train import train_sae; "
    "train_sae(torch.randn(16, 4), labels=torch.arange(16) % 2, w_aux=0.8, n_latents=8, k=2, epochs=1, "
    "progress=False, device='cpu')",
], ids=["import-trainer", "pass-training"])
def test_trainer_imports_on_its_own(code):
    """`import vs2mini.method.train` (and PASS training through it) in a fresh interpreter."""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# ----------------------------------------------------------------------------------------------- b_pre init
def test_b_pre_initialised_to_full_data_mean_zero_epochs():
    X = gaussian_data(N=300)
    X[:64] += 10.0                                    # the first batch's mean differs from the data mean
    sae, hist = train_sae(X, n_latents=16, k=2, epochs=0, batch_size=64, progress=False, device="cpu")
    assert torch.allclose(sae.b_pre, X.double().mean(0).float(), atol=1e-5)
    assert not torch.allclose(sae.b_pre, X[:64].mean(0), atol=1.0)
    assert set(hist) == HIST_KEYS and all(len(v) == 0 for v in hist.values())


def test_b_pre_initialised_to_data_mean_tiny_lr():
    X = gaussian_data(N=200)
    sae, _ = train_sae(X, n_latents=16, k=2, epochs=1, batch_size=50, lr=1e-12, progress=False, device="cpu")
    assert torch.allclose(sae.b_pre, X.mean(0), atol=1e-5)


# ------------------------------------------------------------------------------------------ decoder constraint
def test_decoder_rows_unit_norm_after_training():
    X = gaussian_data(N=256, d=8)
    sae, _ = train_sae(X, n_latents=32, k=4, epochs=3, batch_size=64, lr=1e-2, progress=False, device="cpu")
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(32), atol=1e-6)


def test_remove_parallel_grad():
    sae = TopKSAE(6, 10, 2, seed=0)
    g = torch.randn(10, 6)
    sae.W_dec.grad = g.clone()
    remove_parallel_grad(sae)
    W = sae.W_dec.detach()
    dots = (sae.W_dec.grad * W).sum(-1)
    assert torch.allclose(dots, torch.zeros(10), atol=1e-6)
    # exactly the tangent projection g_i - <g_i, w_i> w_i (the orthogonal part is untouched)
    assert torch.allclose(sae.W_dec.grad, g - (g * W).sum(-1, keepdim=True) * W, atol=1e-6)
    # projecting twice changes nothing
    once = sae.W_dec.grad.clone()
    remove_parallel_grad(sae)
    assert torch.allclose(sae.W_dec.grad, once, atol=1e-6)
    sae.W_dec.grad = None
    remove_parallel_grad(sae)                                          # no gradient: no error
    assert sae.W_dec.grad is None


def test_one_training_step_matches_manual_reference():
    """One full step (batch = all data): b_pre = mean, FVU loss, tangent projection of the W_dec gradient, Adam at
    lr * lr_lambda(0) = lr, then unit-norm rows. The same step without the projection gives another decoder."""
    X = gaussian_data(N=64, d=8, seed=3)
    lr = 1e-2
    got, _ = train_sae(X, n_latents=16, k=3, epochs=1, batch_size=64, lr=lr, seed=4, progress=False, device="cpu")

    def manual(project: bool):
        sae = TopKSAE(8, 16, 3, seed=4)
        with torch.no_grad():
            sae.b_pre.copy_(X.double().mean(0).float())
            sae.normalize_decoder()
        opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999))
        vals, idx = sae.encode_sparse(X)
        batch_fvu(X, sae.decode(vals, idx)).backward()
        if project:
            remove_parallel_grad(sae)
        opt.step()
        sae.normalize_decoder()
        return sae

    ref, unprojected = manual(True), manual(False)
    for name, p in ref.state_dict().items():
        assert torch.allclose(got.state_dict()[name], p, atol=lr * 0.05), name
    assert (unprojected.W_dec - ref.W_dec).abs().max() > lr * 0.2


# ----------------------------------------------------------------------------------------------- LR schedule
def test_lr_lambda_by_hand():
    f = lr_lambda(warmup=4, total=10)
    want = {0: 0.25, 1: 0.5, 2: 0.75, 3: 1.0, 4: 1.0, 5: 5 / 6, 7: 0.5, 9: 1 / 6, 10: 0.0, 12: 0.0}
    for step, v in want.items():
        assert f(step) == pytest.approx(v), step


def test_lr_schedule_in_training_ends_at_zero():
    X = gaussian_data(N=128)
    _, hist = train_sae(X, n_latents=16, k=2, epochs=4, batch_size=32, lr=1e-3, progress=False, device="cpu")
    # 4 steps per epoch, 16 steps, warm-up round(0.05 * 16) = 1 step: lr after epoch e = 1e-3 * (16 - 4e) / 15
    assert hist["lr"] == pytest.approx([1e-3 * (16 - 4 * e) / 15 for e in (1, 2, 3, 4)])


# --------------------------------------------------------------------------------------------------- FVU
def test_batch_fvu_2x2_by_hand():
    x = torch.tensor([[1., 2.], [3., 4.]])
    x_hat = torch.tensor([[1., 3.], [2., 4.]])
    # SSE = 0 + 1 + 1 + 0 = 2; mean (2, 3); SST = 1 + 1 + 1 + 1 = 4
    assert batch_fvu(x, x_hat).item() == pytest.approx(0.5)
    assert batch_fvu(x, x).item() == 0.0
    assert batch_fvu(x, x.mean(0).expand_as(x)).item() == pytest.approx(1.0)
    # common shift and scale of x and x_hat
    t = torch.tensor([10., -7.])
    assert batch_fvu(3 * x + t, 3 * x_hat + t).item() == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------------- AuxK
def auxk_hand_sae():
    sae = TopKSAE(2, 3, 1)
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor([[1., 0], [0, 1], [0.6, 0.8]]))
        sae.b_pre.copy_(torch.tensor([5., -3.]))
    return sae


def test_auxk_hand_value_without_b_pre():
    sae = auxk_hand_sae()
    pre = torch.tensor([[9., 2, 1], [9, 0.5, 3]])
    residual = torch.tensor([[0., 1], [2, 2]])
    dead = torch.tensor([False, True, True])
    # k_aux = 1 among the dead latents {1, 2}: row 0 picks latent 1 (2), row 1 picks latent 2 (3).
    # e_hat = (0, 2), (1.8, 2.4); SSE = 0 + 1 + 0.04 + 0.16 = 1.2
    # normalised by the input batch's total variance, given here as 2.5; n_dead / k_aux = 2 -> scale 1
    loss = auxk_loss(sae, pre, residual, dead, k_aux=1, total_variance=2.5)
    assert loss.item() == pytest.approx(1.2 / 2.5, abs=1e-6)
    # the sparsify #132 bug adds b_pre = (5, -3) to e_hat: (5, -1), (6.8, -0.6)
    buggy = (25 + 4 + 6.8 ** 2 + 2.6 ** 2) / 2.5
    assert abs(loss.item() - buggy) > 1.0


def test_auxk_zero_dead_is_exactly_zero():
    sae = auxk_hand_sae()
    pre = torch.rand(2, 3, requires_grad=True)
    loss = auxk_loss(sae, pre, torch.randn(2, 2), torch.zeros(3, dtype=torch.bool), k_aux=1, total_variance=1.0)
    assert loss.item() == 0.0
    assert not loss.requires_grad                      # no graph built


def test_auxk_scale_is_min_ndead_over_kaux_one():
    """scale = min(n_dead / k_aux, 1) with the requested k_aux (Gao et al.; sparsify computes it before clamping
    k_aux to n_dead). With 2 dead latents and k_aux = 4, the loss is half the unscaled value."""
    sae = auxk_hand_sae()
    pre = torch.tensor([[9., 2, 1], [9, 0.5, 3]])
    residual = torch.tensor([[0., 1], [2, 2]])
    dead = torch.tensor([False, True, True])
    # both dead latents selected: e_hat = 2 e1 + 1 (0.6, 0.8) = (0.6, 2.8); 0.5 e1 + 3 (0.6, 0.8) = (1.8, 2.9)
    # SSE = 0.36 + 3.24 + 0.04 + 0.81 = 4.45; total variance given as 2.5
    unscaled = 4.45 / 2.5
    assert auxk_loss(sae, pre, residual, dead, k_aux=2, total_variance=2.5).item() == pytest.approx(unscaled, abs=1e-5)   # scale 1
    assert auxk_loss(sae, pre, residual, dead, k_aux=4, total_variance=2.5).item() == pytest.approx(0.5 * unscaled, abs=1e-5)
    # one dead latent, k_aux = 1: scale 1;  one dead latent, k_aux = 2: scale 1/2
    dead1 = torch.tensor([False, False, True])
    one = auxk_loss(sae, pre, residual, dead1, k_aux=1, total_variance=2.5).item()
    assert auxk_loss(sae, pre, residual, dead1, k_aux=2, total_variance=2.5).item() == pytest.approx(0.5 * one, abs=1e-6)


def test_auxk_residual_detached_and_gradient_only_on_dead_rows():
    torch.manual_seed(0)
    sae = TopKSAE(8, 64, 2, seed=0)
    with torch.no_grad():
        sae.b_pre.copy_(torch.randn(8))
    x = torch.randn(4, 8) + sae.b_pre.detach()
    vals, idx = sae.encode_sparse(x)
    x_hat = sae.decode(vals, idx)
    used = torch.zeros(64, dtype=torch.bool)
    used[idx.flatten()] = True
    dead = ~used                                            # latents the main path did not use
    pre = sae.pre_acts(x)
    tv = (x - x.mean(0)).pow(2).sum()
    loss = auxk_loss(sae, pre, x - x_hat, dead, k_aux=4, total_variance=tv)
    assert loss.item() > 0
    loss.backward()
    g = sae.W_dec.grad
    assert g[used].abs().max().item() == 0.0                # live rows: no gradient (residual detached)
    picked = torch.where(dead, pre, -torch.inf).topk(4, dim=-1)
    picked_rows = picked.indices[picked.values > 0].unique()
    assert len(picked_rows) > 0
    assert (g[picked_rows].norm(dim=-1) > 0).all()          # dead rows that AuxK used: non-zero gradient
    assert sae.W_enc.grad[picked_rows].norm(dim=-1).min() > 0

    # direct check: no gradient reaches the residual argument
    r = (x - x_hat).detach().requires_grad_(True)
    auxk_loss(sae, pre.detach(), r, dead, k_aux=4, total_variance=tv).backward()
    assert r.grad is None


def test_auxk_switches_on_in_training():
    X = gaussian_data(N=256, d=8)
    _, hist = train_sae(X, n_latents=64, k=2, epochs=3, batch_size=64, auxk_alpha=1 / 32, dead_threshold=64,
                        progress=False, device="cpu")
    assert hist["auxk"][0] >= 0 and max(hist["auxk"]) > 0
    assert hist["loss"][-1] == pytest.approx(hist["fvu"][-1] + hist["auxk"][-1] / 32, rel=1e-5)


# ------------------------------------------------------------------------------------------- reproducibility
def test_same_seed_same_sae():
    X = gaussian_data(N=200)
    kw = dict(n_latents=24, k=3, epochs=3, batch_size=40, lr=3e-3, progress=False, device="cpu")
    a, ha = train_sae(X, seed=5, **kw)
    b, hb = train_sae(X, seed=5, **kw)
    c, _ = train_sae(X, seed=6, **kw)
    for name, p in a.state_dict().items():
        assert torch.equal(p, b.state_dict()[name]), name
    assert ha == hb
    assert not torch.equal(a.W_enc, c.W_enc)


# ------------------------------------------------------------------------------------- end-to-end known answer
def sparse_dictionary_data(d=24, n_true=32, k=3, N=2000, seed=0):
    """x = sum of 1..k ground-truth unit atoms with coefficients in [0.5, 2.5] + mu."""
    g = torch.Generator().manual_seed(seed)
    atoms = F.normalize(torch.randn(n_true, d, generator=g), dim=-1)
    mu = 3 * torch.randn(d, generator=g)
    n_active = torch.randint(1, k + 1, (N,), generator=g)
    order = torch.rand(N, n_true, generator=g).argsort(1)            # a random permutation of atoms per row
    coef = torch.rand(N, n_true, generator=g) * 2 + 0.5
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n_true).expand(N, -1))
    mask = (rank < n_active[:, None]).float()                        # the first n_active atoms of each permutation
    return (mask * coef) @ atoms + mu, atoms, mu


def test_end_to_end_recovers_dictionary():
    X, atoms, _ = sparse_dictionary_data()
    sae, hist = train_sae(X, n_latents=64, k=3, epochs=40, batch_size=128, lr=3e-3, seed=0, progress=False,
                          device="cpu")
    fvu = sae.fvu(X)
    assert fvu < 0.1
    assert hist["fvu"][-1] < 0.1
    max_cos = (atoms @ sae.W_dec.detach().T).max(1).values
    assert max_cos.mean().item() > 0.9
    # the untrained SAE is far from this (the test measures learning, not the init)
    init = TopKSAE(24, 64, 3, seed=0)
    with torch.no_grad():
        init.b_pre.copy_(X.mean(0))
    assert init.fvu(X) > 0.3
    assert (atoms @ init.W_dec.detach().T).max(1).values.mean().item() < 0.8


def test_bf16_autocast_matches_fp32_training():
    # bf16 only for the encoder GEMM (as sparsify trained): parameters stay fp32 and the result is close to fp32's
    X, atoms, _ = sparse_dictionary_data(N=1000)
    kw = dict(n_latents=64, k=3, epochs=20, batch_size=128, lr=3e-3, seed=0, progress=False, device="cpu")
    fp32, _ = train_sae(X, **kw)
    bf16, hist = train_sae(X, bf16=True, **kw)
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert bf16.fvu(X) == pytest.approx(fp32.fvu(X), rel=0.1, abs=0.01)
    assert hist["l0"][-1] == pytest.approx(3.0, abs=0.05)
    assert not torch.equal(bf16.W_dec, fp32.W_dec)    # the bf16 path really ran


# ----------------------------------------------------------------------------------------------------- history
def test_history_keys_and_lengths():
    X = gaussian_data(N=120, d=8)
    sae, hist = train_sae(X, n_latents=32, k=3, epochs=5, batch_size=50, progress=False, device="cpu")
    assert set(hist) == HIST_KEYS
    assert all(len(v) == 5 for v in hist.values())
    assert hist["loss"] == pytest.approx(hist["fvu"])       # no AuxK, no PASS
    assert all(v == 0 for v in hist["auxk"] + hist["pass"])
    assert all(v == pytest.approx(3.0) for v in hist["l0"])  # gaussian data: k positive pre-acts per row
    assert all(0.0 <= v <= 1.0 for v in hist["dead_frac"])
    assert sae.training is False


# ------------------------------------------------------------------------------------------------------ errors
def test_bad_inputs():
    X = gaussian_data(N=40, d=4)
    bad = X.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_sae(bad, n_latents=8, k=2, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match=r"labels must be \(N,\)"):
        train_sae(X, labels=torch.zeros(39, dtype=torch.long), w_aux=0.8, n_latents=8, k=2, epochs=1,
                  progress=False, device="cpu")
    with pytest.raises(ValueError, match="needs class labels"):
        train_sae(X, w_aux=0.8, n_latents=8, k=2, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match=r"float tensor \(N, d\)"):
        train_sae(X[0], n_latents=8, k=2, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="float tensor"):
        train_sae(X.long(), n_latents=8, k=2, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="at least 2"):
        train_sae(X[:1], n_latents=8, k=2, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="SAE expects d=5"):
        train_sae(X, sae=TopKSAE(5, 8, 2), epochs=1, progress=False, device="cpu")


def test_epoch_batches_merge_a_small_remainder():
    sizes = lambda n, b: [len(x) for x in epoch_batches(torch.arange(n), b)]  # noqa: E731
    assert sizes(10, 4) == [4, 4, 2]       # remainder 2 = half a batch: kept
    assert sizes(9, 4) == [4, 5]           # remainder 1 < 2: merged into the previous batch
    assert sizes(12, 4) == [4, 4, 4]
    assert sizes(3, 4) == [3]
    got = torch.cat(epoch_batches(torch.randperm(9), 4))
    assert sorted(got.tolist()) == list(range(9))          # every vector exactly once


def test_one_vector_remainder_does_not_blow_up_training():
    # N = 65 with batch 64 used to leave a 1-vector batch: FVU = SSE / ~0 -> a loss of ~1e9 that wrecks Adam
    X = gaussian_data(N=65, d=8)
    _, hist = train_sae(X, n_latents=32, k=2, epochs=5, batch_size=64, lr=3e-3, progress=False, device="cpu")
    assert max(hist["loss"]) < 10


# ------------------------------------------------------------------------------------------- training budget
def test_n_batches_matches_epoch_batches():
    for n in (1, 2, 3, 9, 10, 12, 63, 64, 65, 95, 96, 97, 5395, 45000):
        for b in (1, 4, 64, 4096):
            if b <= n:
                assert n_batches(n, b) == len(epoch_batches(torch.arange(n), b)), (n, b)


@pytest.mark.parametrize("dataset, n_train, steps_per_epoch, epochs", [
    # n_fit = n - round(0.1 n); batches of 4096, a remainder under 2048 merged into the previous batch
    ("cifar100", 50_000, 11, 91),       # 45,000 = 10 x 4096 + 4,040 -> 11 steps; ceil(1000 / 11) = 91 epochs
    ("cub200", 5_994, 1, 1000),         # 5,395 = 4096 + 1,299 (merged) -> 1 step; 1000 epochs
    ("tinyimagenet", 100_000, 22, 46),  # 90,000 = 21 x 4096 + 3,984 -> 22 steps; ceil(1000 / 22) = 46 epochs
])
def test_full_profile_step_floor(dataset, n_train, steps_per_epoch, epochs):
    """Every dataset of the `full` profile trains at least 1,000 optimiser steps (today's 30 epochs would give CUB
    30 steps), computed from the profile without training."""
    from vs2mini.config import get_profile
    p = get_profile("full")
    assert dataset in p.datasets
    plan = training_schedule(n_train, epochs=p.train.epochs, batch_size=p.train.batch_size, min_steps=p.train.min_steps,
                             holdout=p.train.holdout)
    assert (plan.steps_per_epoch, plan.epochs) == (steps_per_epoch, epochs)
    assert plan.steps == steps_per_epoch * epochs >= 1000 >= 10 * 30
    assert plan.n_heldout == round(0.1 * n_train) and plan.n_fit + plan.n_heldout == n_train
    assert plan.warmup_steps == round(0.05 * plan.steps)


def test_min_steps_raises_epochs_in_training():
    X = gaussian_data(N=100)
    _, hist = train_sae(X, n_latents=16, k=2, epochs=2, batch_size=100, min_steps=7, progress=False, device="cpu")
    assert hist["step"] == [1, 2, 3, 4, 5, 6, 7]               # one step per epoch, raised from 2 to 7 epochs
    _, hist = train_sae(X, n_latents=16, k=2, epochs=2, batch_size=25, min_steps=5, progress=False, device="cpu")
    assert hist["step"] == [4, 8]                               # the floor is already met


def test_holdout_best_checkpoint_and_summary():
    """The held-out slice is never trained on, its FVU is logged per epoch, and the returned SAE is the epoch with
    the lowest held-out FVU (checked by recomputing the held-out FVU of the returned SAE)."""
    from vs2mini.method.train import split_holdout
    X = gaussian_data(N=60, d=8)                               # few vectors, wide SAE, high lr: overfits
    kw = dict(n_latents=64, k=4, epochs=40, batch_size=54, lr=3e-2, seed=1, progress=False, device="cpu")
    sae, hist = train_sae(X, holdout=0.1, **kw)
    fit, held = split_holdout(60, 6, seed=1)
    assert sorted(fit.tolist() + held.tolist()) == list(range(60)) and len(held) == 6
    assert len(hist["heldout_fvu"]) == len(hist["fvu"]) == 40
    s = summary(hist)
    best = min(range(40), key=hist["heldout_fvu"].__getitem__)
    assert s["selected_epoch"] == best + 1 and s["heldout_fvu"] == hist["heldout_fvu"][best]
    assert best < 39                                           # the last epoch was not the best: selection matters
    assert sae.fvu(X[held]) == pytest.approx(hist["heldout_fvu"][best], rel=1e-6)
    frozen, _ = train_sae(X, holdout=0.1, **{**kw, "lr": 1e-12, "epochs": 1})
    assert torch.allclose(frozen.b_pre, X[fit].mean(0), atol=1e-5)      # b_pre: mean of the fit slice only
    assert not torch.allclose(frozen.b_pre, X.mean(0), atol=1e-3)
    # early stopping: stops once `patience` steps pass without a held-out improvement
    _, h2 = train_sae(X, holdout=0.1, patience=3, **kw)
    b2 = min(range(len(h2["heldout_fvu"])), key=h2["heldout_fvu"].__getitem__)
    assert len(h2["fvu"]) == b2 + 1 + 3 < 40
    with pytest.raises(ValueError, match="patience"):
        train_sae(X, patience=3, **kw)                          # no held-out slice to judge by


def test_falsy_options_are_honoured_or_rejected():
    X = gaussian_data(N=64, d=8)
    kw = dict(n_latents=32, k=2, epochs=2, batch_size=32, progress=False, device="cpu")
    with pytest.raises(ValueError, match="k_aux must be a positive integer"):
        train_sae(X, auxk_alpha=0.1, k_aux=0, **kw)
    with pytest.raises(ValueError, match="dead_threshold must be"):
        train_sae(X, auxk_alpha=0.1, dead_threshold=-1, **kw)
    # dead_threshold = 0: every latent not selected in the previous step is dead, so AuxK runs from step 2 on;
    # the default (one epoch = 64 samples) leaves AuxK off in the first epoch
    _, h0 = train_sae(X, auxk_alpha=0.1, dead_threshold=0, **kw)
    _, hd = train_sae(X, auxk_alpha=0.1, **kw)
    assert h0["auxk"][0] > 0 and hd["auxk"][0] == 0


def test_continue_training_given_sae_keeps_b_pre_and_refuses_conflicts():
    X = gaussian_data(N=64, d=8)
    start = TopKSAE(8, 16, 2, seed=0)
    with torch.no_grad():
        start.b_pre.fill_(7.0)                                   # not the data mean: must be kept
    sae, _ = train_sae(X, sae=start, epochs=1, batch_size=64, lr=1e-12, progress=False, device="cpu")
    assert torch.allclose(sae.b_pre, torch.full((8,), 7.0), atol=1e-6)
    with pytest.raises(ValueError, match="k=3 conflicts"):
        train_sae(X, sae=TopKSAE(8, 16, 2), k=3, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="n_latents=32 conflicts"):
        train_sae(X, sae=TopKSAE(8, 16, 2), n_latents=32, epochs=1, progress=False, device="cpu")
    sae, _ = train_sae(X, sae=TopKSAE(8, 16, 2), k=2, n_latents=16, epochs=1, progress=False, device="cpu")
    assert (sae.n_latents, sae.k) == (16, 2)


def test_fused_adam_used_where_torch_has_it():
    from vs2mini.method.train import fused_adam_available
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    assert fused_adam_available(torch.device("cpu")) == ((major, minor) >= (2, 4))   # CPU fused Adam: torch 2.4
