"""How train_sae judges, indexes and counts (vs2mini/method/train.py): a PASS SAE is selected by its own held-out
objective, its labels follow the held-out split, the firing bookkeeping and AuxK's dead test, the per-epoch
reshuffle, and the optional dead-feature pruning. Class-structured synthetic data: Gaussian clusters by class."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vs2mini.method import train as trainer
from vs2mini.method.pass_loss import pass_loss
from vs2mini.method.sae import TopKSAE
from vs2mini.method.train import FiringStats, split_holdout, summary, train_sae

N, D, C = 600, 16, 6
PASS_KW = dict(n_latents=64, k=4, epochs=40, batch_size=100, lr=1e-2, holdout=0.2, min_steps=0, progress=False,
               device="cpu")


def clusters(seed: int = 0, n: int = N):
    """n points in C Gaussian clusters (centres 2 sigma apart on average), labels = cluster."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, D, generator=g) * 2.0
    y = torch.arange(n) % C
    return centres[y] + torch.randn(n, D, generator=g), y


def within_class_fraction(sae: TopKSAE, X, y) -> float:
    """Share of code variance inside the classes (0: every code at its class mean)."""
    vals, idx = sae.encode_sparse(X)
    return pass_loss(vals, idx, y, sae.n_latents, variant="ratio").item()


@pytest.fixture(scope="module")
def pass_run():
    X, y = clusters(0)
    sae, hist = train_sae(X, labels=y, w_aux=0.8, seed=0, **PASS_KW)
    plain, phist = train_sae(X, seed=0, **PASS_KW)
    fit, held = split_holdout(N, round(0.2 * N), seed=0)
    return X, y, fit, held, sae, hist, plain, phist


# --------------------------------------------------------------------------------------- PASS selection
def test_pass_sae_is_selected_by_its_own_heldout_objective(pass_run):
    """The lowest held-out FVU of a PASS run is at its first epochs (the PASS term trades reconstruction for
    alignment); selecting by it returns an SAE whose codes are LESS class-aligned than a plain SAE's. The PASS
    objective on the held-out slice selects an aligned one."""
    X, y, fit, held, sae, hist, plain, _ = pass_run
    fvu_pick = min(range(len(hist["heldout_fvu"])), key=hist["heldout_fvu"].__getitem__)
    assert fvu_pick < 5                                         # the old rule's choice: an early epoch
    s = summary(hist)
    assert s["selected_by"] == "heldout_objective" and s["selected_epoch"] - 1 != fvu_pick
    assert within_class_fraction(sae, X[held], y[held]) < 0.5 * within_class_fraction(plain, X[held], y[held])


def test_heldout_objective_uses_the_heldout_labels(pass_run):
    """hist["heldout_objective"] at the selected epoch is FVU + w_aux * PASS term of the returned SAE on the
    held-out vectors with THEIR labels (class means over the whole slice)."""
    X, y, fit, held, sae, hist, _, _ = pass_run
    best = summary(hist)["selected_epoch"] - 1
    vals, idx = sae.encode_sparse(X[held])
    want = sae.fvu(X[held]) + 0.8 * pass_loss(vals, idx, y[held], sae.n_latents).item()
    assert hist["heldout_objective"][best] == pytest.approx(want, rel=1e-5)
    wrong = sae.fvu(X[held]) + 0.8 * pass_loss(vals, idx, y[:len(held)], sae.n_latents).item()
    assert abs(wrong - want) > 1e-2 * want                       # labels not following the split would differ
    assert min(hist["heldout_objective"]) == hist["heldout_objective"][best]


def test_plain_sae_still_selected_by_heldout_fvu(pass_run):
    *_, phist = pass_run
    s = summary(phist)
    assert "heldout_objective" not in phist and s["selected_by"] == "heldout_fvu"
    assert s["heldout_fvu"] == min(phist["heldout_fvu"])


def test_pass_labels_follow_the_fit_slice():
    """With a held-out split, training on (X, labels) is training on (X[fit], labels[fit]): the same per-epoch
    PASS terms and FVUs as a run without a held-out slice on the fit vectors alone."""
    X, y = clusters(1, n=300)
    kw = dict(n_latents=32, k=4, epochs=3, batch_size=60, lr=1e-2, min_steps=0, seed=3, progress=False,
              device="cpu")
    _, h = train_sae(X, labels=y, w_aux=0.8, holdout=0.2, **kw)
    fit, _ = split_holdout(300, 60, seed=3)
    _, ref = train_sae(X[fit], labels=y[fit], w_aux=0.8, holdout=0.0, **kw)
    assert h["pass"] == pytest.approx(ref["pass"], rel=1e-5) and h["fvu"] == pytest.approx(ref["fvu"], rel=1e-5)
    _, bad = train_sae(X[fit], labels=y[:len(fit)], w_aux=0.8, holdout=0.0, **kw)     # labels not re-indexed
    assert bad["pass"] != pytest.approx(ref["pass"], rel=1e-3)


# ---------------------------------------------------------------------------------- firing and AuxK
def test_zero_valued_selection_does_not_fire():
    stats = FiringStats(4, "cpu")
    stats.since_fired += 10
    vals = torch.tensor([[2.0, 0.0], [0.0, 0.0]])               # latent 1 and 3 picked with value 0
    idx = torch.tensor([[0, 1], [3, 1]])
    stats.update(vals, idx)
    assert stats.fired.tolist() == [True, False, False, False]
    assert stats.since_fired.tolist() == [0, 12, 12, 12]


def test_dead_test_is_strictly_more_than_the_threshold():
    """A latent is dead after MORE than `dead_threshold` samples without firing: at exactly the threshold AuxK
    stays off, one sample more and it is on."""
    X, _ = clusters(2, n=32)
    for since, on in ((5, False), (6, True)):
        sae = TopKSAE(D, 16, 2, seed=0)
        opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        stats = FiringStats(16, "cpu")
        stats.since_fired.fill_(since)
        terms = trainer.train_step(sae, opt, sched, X, stats, auxk_alpha=0.5, k_aux=4, dead_threshold=5)
        assert (terms[2].item() > 0) == on, since


def test_auxk_trains_the_encoder_of_dead_latents():
    """AuxK's gradient reaches W_enc of dead latents through the pre-activations (not detached): with every
    latent dead, latents that top-k never selects get an encoder gradient only when AuxK is on."""
    X, _ = clusters(3, n=64)
    grads = {}
    for alpha in (0.0, 0.5):
        sae = TopKSAE(D, 32, 2, seed=1)
        with torch.no_grad():
            sae.b_pre.copy_(X.mean(0))
        opt = torch.optim.SGD(sae.parameters(), lr=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        stats = FiringStats(32, "cpu")
        stats.since_fired.fill_(1000)
        _, idx = sae.encode_sparse(X)
        unused = torch.ones(32, dtype=torch.bool)
        unused[idx.flatten()] = False
        trainer.train_step(sae, opt, sched, X, stats, auxk_alpha=alpha, k_aux=8, dead_threshold=0)
        grads[alpha] = sae.W_enc.grad[unused].norm(dim=-1)
    assert unused.any() and grads[0.0].max() == 0.0
    assert grads[0.5].max() > 0


def test_every_epoch_is_reshuffled(monkeypatch):
    """Each epoch visits every fit vector once, in a new random order (not one permutation reused)."""
    X, _ = clusters(4, n=40)
    seen = []
    real = trainer.train_step

    def spy(sae, opt, sched, x, *a, **kw):
        seen.append(x.clone())
        return real(sae, opt, sched, x, *a, **kw)

    monkeypatch.setattr(trainer, "train_step", spy)
    train_sae(X, n_latents=16, k=2, epochs=3, batch_size=10, min_steps=0, progress=False, device="cpu")
    epochs = [torch.cat(seen[i:i + 4]) for i in range(0, 12, 4)]
    rows = {tuple(r.tolist()): i for i, r in enumerate(X)}
    orders = [[rows[tuple(r.tolist())] for r in e] for e in epochs]
    assert all(sorted(o) == list(range(40)) for o in orders)
    assert orders[0] != orders[1] and orders[1] != orders[2]


# --------------------------------------------------------------------------------------- pruning
# (firing_counts and prune_rare_latents by hand: tests/method/test_prune.py)
def test_train_sae_prune_below_is_off_by_default():
    X, _ = clusters(5, n=200)
    kw = dict(n_latents=128, k=2, epochs=2, batch_size=50, min_steps=0, progress=False, device="cpu")
    sae, hist = train_sae(X, **kw)
    assert sae.n_latents == 128 and "pruned" not in hist
    counts = trainer.firing_counts(sae, X)
    pruned, hp = train_sae(X, prune_below=3, **kw)
    assert pruned.n_latents == int((counts >= 3).sum()) == 128 - hp["pruned"] and hp["pruned"] > 0
    with pytest.raises(ValueError, match="prune_below"):
        train_sae(X, prune_below=0, **kw)


def test_profile_prune_below_reaches_the_trainer():
    from vs2mini.pipeline import Setup
    from vs2mini.config import get_profile
    clip = SimpleNamespace(device=torch.device("cpu"), name="ViT-B-32")
    assert get_profile("full").sae.prune_below is None
    s = Setup(get_profile("toy", prune_below=100), clip, "toy", [], None, None, None, None, None)
    assert s.train_kwargs()["prune_below"] == 100
