"""Which SAE, split, head, statistics and settings feed each row of every table beyond the main one
(vs2mini/tables/ablations.py, baselines.py, shift.py), and the main table's SAE^{F+g}_REC gamma (tables/main.py).

A hand-built world in the style of tests/test_reproduce_wiring.py: d = D = C = 8; the stub CLIP's visual tower has
an identity ln_post and proj = I, and the text head is e_0 .. e_7, so the zero-shot prediction of a CLS token x is
argmax(x). Each dataset is its own shifted copy of the world. Rows are scored through `tables.run._accuracy`; the
tests replace it by a spy that records WHICH tokens, head and top-k each row was scored on (a row's value is then
the index of its call), so a wrong wiring is caught even where two wirings happen to give the same accuracy.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vs2mini import paper
from vs2mini.clip.features import Features
from vs2mini.clip.models import Clip
from vs2mini.config import get_profile
from vs2mini.method import retrieval, steer
from vs2mini.method import train as trainer
from vs2mini.method.sae import TopKSAE
from vs2mini.pipeline import Setup
from vs2mini.tables import ablations as A
from vs2mini.tables import baselines as B
from vs2mini.tables import main as R
from vs2mini.tables import rows as RW
from vs2mini.tables import run as T
from vs2mini.tables import shift as S

D = C = 8
N_TRAIN, N_TEST = 48, 24
SMALL = dict(n_neighbours=5, epochs=3, batch_size=16, min_steps=0, holdout=0.0, k=2, expansion=2, bf16=False)


class IdentityLN(torch.nn.Module):
    normalized_shape = (D,)

    def forward(self, x):
        return x


def stub_clip(name="stub", pretrained=None) -> Clip:
    visual = torch.nn.Module()
    visual.ln_post, visual.proj = IdentityLN(), torch.nn.Parameter(torch.eye(D), requires_grad=False)
    model = torch.nn.Module()
    model.visual = visual
    return Clip(model, None, name, pretrained, torch.device("cpu"))


def make_split(n, g, shift, flip=0.25):
    labels = torch.arange(n) % C
    cls = torch.randn(n, D, generator=g) * 0.8 + 2.0 * F.one_hot(labels, D).float() + shift
    wrong = torch.rand(n, generator=g) < flip              # true labels CLIP will not predict
    labels = torch.where(wrong, (labels + 1) % C, labels)
    emb = 3.0 * F.one_hot(labels, D).float() + 0.6 * torch.randn(n, D, generator=g)
    return Features(cls, emb, labels)


def make_setup(dataset="cifar100", *, real=False, model="ViT-B-32-quickgelu", seed=0, **profile) -> Setup:
    g = torch.Generator().manual_seed(seed)
    shift = 0.4 * torch.randn(D, generator=g)
    train, test = make_split(N_TRAIN, g, shift), make_split(N_TEST, g, shift + 0.3 * torch.randn(D, generator=g))
    p = get_profile("full" if real else "toy", **{**SMALL, **profile})
    clip = stub_clip(model if real else "stub", "openai" if real else None)
    data = SimpleNamespace(synthetic=not real)
    return Setup(p, clip, dataset, [f"c{i}" for i in range(C)], train, test, torch.eye(C, D), data, data)


def random_sae(seed, b_pre=None, n=16, k=2):
    sae = TopKSAE(D, n, k, seed=seed)
    with torch.no_grad():
        sae.b_enc.fill_(0.3)
        sae.b_pre.copy_(torch.randn(D, generator=torch.Generator().manual_seed(seed)) if b_pre is None else b_pre)
    return sae.eval().requires_grad_(False)


@pytest.fixture
def spy(monkeypatch):
    """Replace tables.run._accuracy (where each table module imported it): record each call, return its index as
    the row's value."""
    calls = []

    def fake(s, cls, head=None, k=1):
        calls.append(SimpleNamespace(ds=s.dataset, cls=cls.detach().cpu().float().clone(), head=head, k=k))
        return float(len(calls) - 1)

    for module in (T, A, B, S):
        monkeypatch.setattr(module, "_accuracy", fake)
    return calls


def fed(calls, res, label, col):
    """The recorded call behind a row's cell."""
    row = next(r for r in res.rows if r.label == label)
    return calls[int(row.ours[col])]


def close(a, b):
    return torch.allclose(a.cpu().float(), b.cpu().float(), atol=1e-5)


def same_weights(a, b):
    return all(torch.equal(p, b.state_dict()[k]) for k, p in a.state_dict().items())


# ------------------------------------------------------------------------------------------ top-k
def test_top5_is_top5_by_hand():
    """Logits of two test images over 8 classes: the true class ranks 3rd (in the top-5, not top-1) and 7th."""
    s = make_setup()
    x = torch.zeros(2, D)
    x[0] = torch.tensor([5., 4, 3, 0, 0, 0, 0, 0])           # label 2: rank 3
    x[1] = torch.tensor([8., 7, 6, 5, 4, 3, 2, 1])           # label 6: rank 7
    s = replace(s, test=Features(x, x, torch.tensor([2, 6])))
    assert T._accuracy(s, x) == 0.0 and T._accuracy(s, x, k=5) == 50.0 and T._accuracy(s, x, k=8) == 100.0


# ------------------------------------------------------------------------------------------ prompts (Table 1b)
def test_vs2_plus_ens_is_classified_with_the_ensembled_head(spy, monkeypatch):
    s = make_setup()
    ens = F.normalize(torch.eye(C, D) + 0.7 * torch.eye(C, D).roll(1, 0), dim=-1)
    monkeypatch.setattr(A, "zeroshot_head", lambda clip, names, templates: ens if templates == "cifar18" else None)
    sae = random_sae(1)
    res = A.prompts(s, sae=sae)
    vs2_x = steer.vs2(s.test.cls, sae, s.profile.steer.gamma, s.profile.steer.lam)
    got = {label: fed(spy, res, label, "top-1") for label in ("CLIP zero-shot", "Ens", "VS2", "VS2 + Ens")}
    assert got["CLIP zero-shot"].head is None and close(got["CLIP zero-shot"].cls, s.test.cls)
    assert got["Ens"].head is ens and close(got["Ens"].cls, s.test.cls)
    assert got["VS2"].head is None and close(got["VS2"].cls, vs2_x)
    assert got["VS2 + Ens"].head is ens and close(got["VS2 + Ens"].cls, vs2_x)


# -------------------------------------------------------------------------------- width x k (Tables 8, 16)
def test_width_k_top5_column_and_table_16_from_steering_vectors(spy):
    s = make_setup()
    configs = [(2, 2), (2, 4)]
    res = A.sweep_width_k(s, configs=configs)
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    saes = [s.train_sae(progress=False, expansion=e, k=k)[0] for e, k in configs]
    for (e, k), sae in zip(configs, saes):
        top1, top5 = fed(spy, res, f"{e}x, k={k}", "top-1"), fed(spy, res, f"{e}x, k={k}", "top-5")
        want = steer.vs2(s.test.cls, sae, g, lam)
        assert close(top1.cls, want) and close(top5.cls, want) and (top1.k, top5.k) == (1, 5)
    v = [F.normalize(steer.vs2_vector(s.test.cls, sae, g), dim=-1) for sae in saes]
    want = (v[0] * v[1]).sum(-1).mean().item()
    tokens = [F.normalize(steer.vs2(s.test.cls, sae, g, lam), dim=-1) for sae in saes]
    wrong = (tokens[0] * tokens[1]).sum(-1).mean().item()              # cosines of the steered tokens
    assert abs(want - wrong) > 0.05
    assert res.matrices[0].values[0][1] == pytest.approx(want, abs=1e-5)


# -------------------------------------------------------------------------------- gamma x lambda (Figs. 3, 5)
def test_gamma_lambda_grids_contain_the_papers_optimum():
    for real in (True, False):
        gammas, lams = A.gamma_lambda_grid(make_setup(real=real))
        assert paper.SENSITIVITY_OPTIMUM["gamma"] in gammas and paper.SENSITIVITY_OPTIMUM["lam"] in lams, real
        assert 1.0 in gammas                                            # the identity, for reference
    gammas, lams = A.gamma_lambda_grid(make_setup(real=True))
    assert min(gammas) == 1.0 and max(gammas) == 3.0 and max(lams) == 10.0      # the figures' axes


# -------------------------------------------------------------------------------- baselines (App. D, L)
def test_clip_steering_uses_raw_cls_tokens_and_its_own_label_source(spy):
    s = make_setup()
    sae = random_sae(2)
    res = B.baselines(s, sae=sae)
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    nn_idx = T.neighbour_indices(s, 5)
    for kind in ("pseudo", "oracle"):
        bank, query = T.vs2pp_labels(s, kind)
        mask = retrieval.positive_mask(bank[nn_idx], query, "query")
        want = steer.vs2pp_from_bank(s.test.cls, s.train.cls, nn_idx, mask, g, lam)
        vs2pp = steer.vs2pp_from_bank(s.test.cls, steer.bank_directions(sae, s.train.cls), nn_idx, mask, g, lam)
        assert not close(want, vs2pp)                                    # SAE directions: VS2++ again
        assert close(fed(spy, res, f"CLIP Steering ({kind})", "top-1").cls, want), kind
        assert close(fed(spy, res, f"VS2++ ({kind})", "top-1").cls, vs2pp), kind
    bank, query = T.vs2pp_labels(s, "oracle")
    oracle = steer.vs2pp_from_bank(s.test.cls, s.train.cls, nn_idx,
                                   retrieval.positive_mask(bank[nn_idx], query, "query"), g, lam)
    assert not close(fed(spy, res, "CLIP Steering (pseudo)", "top-1").cls, oracle)   # not always oracle masks


def test_weighted_rag_oracle_cell_and_heldout_choice():
    s = make_setup()
    g = torch.Generator().manual_seed(7)                     # noisy embeddings: the grid's cells disagree
    s = replace(s, train=replace(s.train, emb=s.train.emb + 3.0 * torch.randn(N_TRAIN, D, generator=g)),
                test=replace(s.test, emb=s.test.emb + 3.0 * torch.randn(N_TEST, D, generator=g)))
    res = B.baselines(s, sae=random_sae(2))
    rows = {r.label: r for r in res.rows}
    alphas, ks = B.rag_grid(s)
    grid = B.rag_top1_grid(s.test.emb, s.test.labels, s.train.emb, s.head, alphas, ks)
    assert res.matrices[0].values == grid
    oracle = rows["Weighted RAG (oracle: tuned on test labels)"]
    assert oracle.ours["top-1"] == max(max(r) for r in grid) and "TEST labels" in oracle.note
    assert oracle.paper["top-1"] == paper.TABLE_1A["Weighted RAG"][0]
    # the held-out choice: a seeded 10% of the train split as queries against the rest, train labels
    bank, val = trainer.split_holdout(N_TRAIN, round(0.1 * N_TRAIN), 0)
    vgrid = B.rag_top1_grid(s.train.emb[val], s.train.labels[val], s.train.emb[bank], s.head, alphas, ks)
    _, a, k = max((v, a, k) for a, row in zip(alphas, vgrid) for k, v in zip(ks, row))
    held = rows["Weighted RAG (held-out choice)"]
    assert held.ours["top-1"] == grid[alphas.index(a)][ks.index(k)] and f"alpha {a:g}, k {k}" in held.note
    assert held.paper == {}                                              # no paper number is its setting
    # test labels that the cell (alpha 0, smallest k) predicts perfectly move the oracle cell there, and never move
    # the held-out choice
    sims, idx = retrieval.knn(s.test.emb, s.train.emb, ks[0])
    made = B.embedding_logits(B.rag_mix(s.test.emb, s.train.emb, sims, idx, 0.0, ks[0]), s.head).argmax(-1)
    other = replace(s, test=Features(s.test.cls, s.test.emb, made))
    rows2 = {r.label: r for r in B.baselines(other, sae=random_sae(2)).rows}
    assert rows2["Weighted RAG (oracle: tuned on test labels)"].note != oracle.note
    assert rows2["Weighted RAG (held-out choice)"].note == held.note


# ------------------------------------------------------------------------------------- depth (Table 7)
@pytest.fixture
def fake_tower(monkeypatch):
    """A 3-layer tower: each layer's train tokens are their own tensor; edits are recorded, not run."""
    feats = {v: torch.randn(N_TRAIN, D, generator=torch.Generator().manual_seed(v)) for v in (1, 2, 3)}
    log = SimpleNamespace(trained=[], edits=[])

    def train_on(s, X, progress=False, **over):
        layer = next(v for v, f in feats.items() if f is X)
        log.trained.append((layer, over))
        return SimpleNamespace(layer=layer, n_latents=0, k=0)

    def edited(clip, dataset, edits, batch):
        log.edits.append(dict(edits))
        return torch.randn(N_TEST, D)

    monkeypatch.setattr(A, "_train_on", train_on)
    monkeypatch.setattr(A.depth_mod, "n_layers", lambda clip: 3)
    monkeypatch.setattr(A.depth_mod, "layer_features", lambda clip, ds, layers, batch, progress=False: feats)
    monkeypatch.setattr(A.depth_mod, "edited_features", edited)
    monkeypatch.setattr(A.steer, "vs2_edit", lambda sae, g, lam: ("vs2", sae.layer, g, lam))
    monkeypatch.setattr(A.steer, "reconstruction_edit", lambda sae: ("rec", sae.layer))
    return log


def test_depth_one_sae_per_layer_on_that_layers_tokens(fake_tower):
    s = make_setup()
    res = A.depth(s)
    assert sorted(layer for layer, _ in fake_tower.trained) == [1, 2, 3]
    assert all(over == {} for _, over in fake_tower.trained)           # offline: the profile's SAE shape
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    *steered, a_rec = fake_tower.edits
    assert steered == [{v: ("vs2", v, g, lam) for v in layers} for layers in [(3,), (2, 3), (1, 2, 3)]]
    assert a_rec == {v: ("rec", v) for v in (1, 2, 3)}                  # SAE^A_REC: every layer, its own SAE
    assert [r.label for r in res.rows][-1] == "SAE^A_REC"


def test_depth_real_runs_use_table_7s_sae_and_only_matching_paper_numbers(fake_tower):
    b32 = A.depth(make_setup(real=True))
    assert all(over == {"expansion": 4, "k": 128} for _, over in fake_tower.trained) and fake_tower.trained
    rows = {r.label: r for r in b32.rows}
    assert all(rows[f"VS2 at layer{s}"].paper["top-1"] is None for s in (" 3", "s 2+3", "s 1+2+3"))
    assert rows["CLIP zero-shot"].paper["top-1"] == 61.07 and rows["SAE^A_REC"].paper["top-1"] == 58.01  # B/32
    assert any("no Table 7 number matches" in n for n in b32.notes)
    b16 = {r.label: r for r in A.depth(make_setup(real=True, model="ViT-B-16-quickgelu")).rows}
    assert b16["VS2 at layer 3"].paper["top-1"] == 68.08 and b16["VS2 at layers 1+2+3"].paper["top-1"] == 59.36
    assert b16["CLIP zero-shot"].paper["top-1"] == 63.96 and b16["SAE^A_REC"].paper["top-1"] == 64.05


# ------------------------------------------------------------------------------------- ViT-L/14 (Table 9)
def test_vit_l14_sae_is_table_9s_on_real_runs(monkeypatch):
    asked = []

    def fake_train(self, **kw):
        asked.append(kw)
        return random_sae(3, n=16, k=2), {}

    monkeypatch.setattr(Setup, "train_sae", fake_train)
    monkeypatch.setattr(A.depth_mod, "n_layers", lambda clip: 24)
    A.vit_l14(make_setup(real=True, model="ViT-L-14-quickgelu"))
    assert (asked[-1]["expansion"], asked[-1]["k"]) == (10, 128)
    toy = make_setup()
    A.vit_l14(toy)
    assert (asked[-1]["expansion"], asked[-1]["k"]) == (10, toy.profile.k_for(toy.clip.name))


# ------------------------------------------------------------------------------------- OOD gate (Table 3)
@pytest.fixture
def ood_world():
    setups = {ds: make_setup(ds, real=True, seed=i) for i, ds in enumerate(paper.TABLE_3_COLUMNS)}
    saes = {ds: random_sae(10 + i) for i, ds in enumerate(paper.TABLE_3_COLUMNS)}
    return setups, saes


def test_full_profile_tau_union_excludes_cub():
    train_on, tau_on, evaluate = S.ood_gate_datasets(get_profile("full"))
    assert train_on == ("cifar100", "cub200", "tinyimagenet") and tau_on == ("cifar100", "tinyimagenet")
    assert evaluate == paper.TABLE_3_COLUMNS
    assert get_profile("full").gate.tau_datasets == ("cifar100", "tinyimagenet")   # the main table's gate too


def test_ood_gate_rows_use_the_right_sae_tau_and_mu(spy, ood_world):
    setups, saes = ood_world
    qs = (0.3, 0.7)
    res = S.ood_gate(qs=qs, run=T.Run.of(*setups.values(), saes=saes, profile=get_profile("full", **SMALL)))
    first = setups["cifar100"]
    union = torch.cat([setups[d].train.cls for d in ("cifar100", "cub200", "tinyimagenet")])
    gen, _ = trainer.train_sae(union, progress=False, **first.train_kwargs())
    mu = union.mean(0)
    x_tau = torch.cat([setups[d].train.cls for d in ("cifar100", "tinyimagenet")])
    taus = {q: steer.fvu_threshold(steer.per_sample_fvu(x_tau, gen, mu), q) for q in qs}
    g, lam = first.profile.steer.gamma, first.profile.steer.lam
    rows = {r.label: r for r in res.rows}
    partial = 0
    for ds, s in setups.items():
        x = s.test.cls
        target = fed(spy, res, "VS2 (target-domain SAE)", ds)
        assert target.ds == ds and close(target.cls, steer.vs2(x, saes[ds], g, lam))
        assert not close(target.cls, steer.vs2(x, gen, g, lam))
        ungated = steer.vs2(x, gen, g, lam)
        assert close(fed(spy, res, "VS2 (generalized SAE)", ds).cls, ungated)           # union-trained SAE
        assert not close(ungated, steer.vs2(x, saes["cifar100"], g, lam))
        fvu = steer.per_sample_fvu(x, gen, mu)
        for q in qs:
            want, mask = steer.gate(x, ungated, fvu, taus[q])
            assert close(fed(spy, res, f"VS2 + FVU gate (q={q:g})", ds).cls, want), (ds, q)
            assert rows[f"  coverage % (q={q:g})"].ours[ds] == pytest.approx(100 * mask.float().mean().item())
            partial += 0 < mask.float().mean().item() < 1
            # tau from this dataset's test FVU, or the target-domain SAE behind the gate, would differ
            tau_test = steer.fvu_threshold(fvu, q)
            assert abs(tau_test - taus[q]) > 1e-4
            wrong_sae, _ = steer.gate(x, steer.vs2(x, saes[ds], g, lam), fvu, taus[q])
            assert not close(wrong_sae, want) or mask.sum() == 0
    assert partial > 5                                                  # the gate really gates on these data
    tau_cub = steer.fvu_threshold(steer.per_sample_fvu(torch.cat([x_tau, setups["cub200"].train.cls]), gen, mu), 0.3)
    assert abs(tau_cub - taus[0.3]) > 1e-4                              # CUB in the tau union would move tau


# ------------------------------------------------------------------------------- main table: SAE^{F+g}_REC
def test_sae_rec_gamma_row_uses_the_papers_fixed_gamma(monkeypatch):
    s = make_setup()
    sae = random_sae(4)
    ctx = RW.Context(s.with_settings(gamma=2.5, lam=2.1), sae, sae, None)
    assert ctx.rec_gamma == paper.SAE_REC_GAMMA == 1.5
    out = RW.row_sae_rec_gamma(ctx)
    assert close(out.cls, steer.sae_reconstruction(s.test.cls, sae, 1.5))
    assert not close(out.cls, steer.sae_reconstruction(s.test.cls, sae, 2.5))
    asked = RW.row_sae_rec_gamma(replace(ctx, setup=ctx.setup.with_settings(rec_gamma=2.5)))
    assert close(asked.cls, steer.sae_reconstruction(s.test.cls, sae, 2.5))
    seen = []
    monkeypatch.setattr(R, "ROWS", (lambda c: seen.append(c),))
    general = T.GateData(sae, s.train.cls.mean(0), s.train.cls, ("cifar100",), ("cifar100",))
    res = R.run_reproduce(run=T.Run.of(s.with_settings(gamma=2.5), sae=sae, pass_sae=sae, gate=general))
    assert seen[-1].rec_gamma == 1.5 and seen[-1].gamma == 2.5 and res.settings["rec_gamma"] == 1.5
    R.run_reproduce(run=T.Run.of(s.with_settings(rec_gamma=3.0), sae=sae, pass_sae=sae, gate=general))
    assert seen[-1].rec_gamma == 3.0
