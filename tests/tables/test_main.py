"""Which labels, split, SAE and gamma feed each row of the reproduce table (vs2mini/tables/main.py).

A hand-built Setup: d = D = 4, three classes; the stub CLIP's visual tower has an identity ln_post and proj = I, and
the text head is e_0, e_1, e_2, so the zero-shot prediction of a CLS token x is argmax(x_0, x_1, x_2). The true
labels disagree with that prediction on part of the train split (pseudo-labels != ground truth), the test split is
shifted from the train split (train vs test statistics differ), and retrieval embeddings cluster by true class.
Each test computes the row's correct output independently, checks that the plausible wrong wirings give a
different output on these data, and that the row gives the correct one.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F


import oracles  # tests/oracles.py
import vs2mini.method.train
from vs2mini.tables import main as R
from vs2mini.tables import rows as RW
from vs2mini.method import steer
from vs2mini.tables import ablations
from vs2mini.tables import run as trun
from vs2mini.clip.models import Clip
from vs2mini.clip.features import Features
from vs2mini.pipeline import Setup
from vs2mini.config import get_profile
from vs2mini.method.sae import TopKSAE

D, C, N_TRAIN, N_TEST = 4, 3, 36, 15
GAMMA, LAM, Q = 1.5, 2.1, 0.5


class IdentityLN(torch.nn.Module):
    """Stands in for ln_post: identity, with the attribute cls_to_embedding reads."""
    normalized_shape = (D,)

    def forward(self, x):
        return x


def stub_clip() -> Clip:
    visual = torch.nn.Module()
    visual.ln_post, visual.proj = IdentityLN(), torch.nn.Parameter(torch.eye(D), requires_grad=False)
    model = torch.nn.Module()
    model.visual = visual
    return Clip(model, None, "stub", None, torch.device("cpu"))


def make_split(n, g, shift=0.0, flip=0.0):
    labels = torch.arange(n) % C
    cls = torch.randn(n, D, generator=g) * 0.8 + 2.0 * F.one_hot(labels, D).float() + shift
    wrong = torch.rand(n, generator=g) < flip              # these rows get a true label CLIP will not predict
    labels = torch.where(wrong, (labels + 1) % C, labels)
    emb = 3.0 * F.one_hot(labels, D).float() + 0.3 * torch.randn(n, D, generator=g)  # retrieval clusters by class
    return Features(cls, emb, labels)


def random_sae(seed, b_pre):
    sae = TopKSAE(D, 8, 2, seed=seed)
    with torch.no_grad():
        sae.b_enc.fill_(0.3)
        sae.b_pre.copy_(torch.as_tensor(b_pre, dtype=torch.float32))
    return sae.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def world():
    g = torch.Generator().manual_seed(0)
    train = make_split(N_TRAIN, g, flip=0.3)
    test = make_split(N_TEST, g, shift=torch.tensor([0.0, 0.0, 0.0, 0.5]), flip=0.2)
    profile = get_profile("toy", n_neighbours=5, epochs=3, batch_size=12, min_steps=0, holdout=0.0, k=2,
                          expansion=2, datasets=("cub200",), q=Q)
    data = SimpleNamespace(synthetic=True)
    s = Setup(profile, stub_clip(), "cub200", ["a", "b", "c"], train, test, torch.eye(C, D), data, data)
    sae, pass_sae = random_sae(1, [0.5, -0.3, 0.2, 0.4]), random_sae(2, [0.1, 0.6, -0.4, 0.2])
    general = trun.GateData(random_sae(3, [0.3, 0.3, 0.3, 0.3]), torch.tensor([0.2, 0.1, 0.4, 0.0]),
                         torch.randn(20, D, generator=g) + 1.0, ("cub200", "other"), ("other",))
    ctx = RW.Context(s, sae, pass_sae, general)
    return SimpleNamespace(s=s, sae=sae, pass_sae=pass_sae, general=general, ctx=ctx,
                           x=test.cls, x_train=train.cls)


def differ(a, b):
    return not torch.allclose(a, b, atol=1e-5)


# ------------------------------------------------------------------------------------------- stub checks
def test_stub_is_predictable(world):
    s = world.s
    assert torch.equal(s.logits(s.test.cls).argmax(-1), s.test.cls[:, :C].argmax(-1))
    pseudo = s.logits(s.train.cls).argmax(-1)
    assert (pseudo != s.train.labels).any() and (pseudo == s.train.labels).any()


# ------------------------------------------------------------------------------------------------ rows
def test_zero_shot_row_uses_the_test_split(world):
    out = RW.row_zero_shot(world.ctx)
    assert out.method == "CLIP zero-shot" and torch.equal(out.cls, world.x)


def test_rec_baselines_use_the_target_sae_with_and_without_gamma(world):
    plain = steer.sae_reconstruction(world.x, world.sae)
    amplified = steer.sae_reconstruction(world.x, world.sae, GAMMA)
    assert differ(plain, amplified) and differ(plain, steer.sae_reconstruction(world.x, world.pass_sae))
    rec, rec_g = RW.row_sae_rec(world.ctx), RW.row_sae_rec_gamma(world.ctx)
    assert (rec.method, rec_g.method) == ("SAE^F_REC", "SAE^{F+g}_REC")
    assert torch.allclose(rec.cls, plain, atol=1e-6)           # gamma = 1: not the amplified one
    assert torch.allclose(rec_g.cls, amplified, atol=1e-6)     # gamma applied


def test_vs2_row_uses_the_target_sae_and_gamma(world):
    want = steer.vs2(world.x, world.sae, GAMMA, LAM)
    assert differ(want, steer.vs2(world.x, world.pass_sae, GAMMA, LAM)) and differ(want, world.x)
    out = RW.row_vs2(world.ctx)
    assert out.method == "VS2" and torch.allclose(out.cls, want, atol=1e-6)


def test_in_domain_gate_takes_tau_and_mu_from_the_train_split(world):
    sae, x, xt = world.sae, world.x, world.x_train
    mu = xt.mean(0)
    tau = steer.fvu_threshold(steer.per_sample_fvu(xt, sae, mu), Q)
    fvu = steer.per_sample_fvu(x, sae, mu)
    want, mask = steer.gate(x, steer.vs2(x, sae, GAMMA, LAM), fvu, tau)
    # wrong splits: tau from the test split, or mu from the test split
    tau_test = steer.fvu_threshold(steer.per_sample_fvu(x, sae, mu), Q)
    mu_test = x.mean(0)
    wrong_mu, _ = steer.gate(x, steer.vs2(x, sae, GAMMA, LAM), steer.per_sample_fvu(x, sae, mu_test),
                             steer.fvu_threshold(steer.per_sample_fvu(xt, sae, mu_test), Q))
    assert abs(tau - tau_test) > 1e-3 and differ(want, wrong_mu)
    assert 0 < mask.float().mean() < 1                          # the gate really gates on these data
    out = RW.row_gate_in_domain(world.ctx)
    assert out.method == "VS2 + FVU gate (in-domain tau)"
    assert out.info["tau"] == pytest.approx(tau, rel=1e-6)
    assert torch.allclose(out.cls, want, atol=1e-6) and out.coverage == pytest.approx(mask.float().mean().item())


def test_general_gate_uses_the_generalized_sae_mu_and_tau_set(world):
    g, x = world.general, world.x
    tau = steer.fvu_threshold(steer.per_sample_fvu(g.x_tau, g.sae, g.mu), Q)
    want, mask = steer.gate(x, steer.vs2(x, g.sae, GAMMA, LAM), steer.per_sample_fvu(x, g.sae, g.mu), tau)
    in_domain = RW.row_gate_in_domain(world.ctx)
    assert differ(want, in_domain.cls)                          # target-domain SAE / own-train tau: another row
    tau_test = steer.fvu_threshold(steer.per_sample_fvu(x, g.sae, g.mu), Q)
    assert abs(tau - tau_test) > 1e-3                           # tau from the test split would differ
    out = RW.row_gate_general(world.ctx)
    assert out.method == "VS2 + FVU gate" and out.info["tau"] == pytest.approx(tau, rel=1e-6)
    assert torch.allclose(out.cls, want, atol=1e-6) and out.coverage == pytest.approx(mask.float().mean().item())
    ungated = RW.row_vs2_general(world.ctx)
    assert torch.allclose(ungated.cls, steer.vs2(x, g.sae, GAMMA, LAM), atol=1e-6)
    assert RW.row_gate_general(replace(world.ctx, general=None)) is None


def vs2pp_expected(world, bank_labels, query_labels, dirs=None, gamma=GAMMA):
    nn_idx = world.ctx.neighbours
    pos = bank_labels[nn_idx] == query_labels[:, None]
    dirs = steer.bank_directions(world.sae, world.x_train) if dirs is None else dirs
    return oracles.vs2pp_eq5(world.x, dirs[nn_idx], pos, gamma, LAM)     # eq. 5 read literally (tests/oracles.py)


def test_neighbours_come_from_the_train_bank_by_test_embedding(world):
    s = world.s
    sims = F.normalize(s.test.emb, dim=-1) @ F.normalize(s.train.emb, dim=-1).T
    assert torch.equal(world.ctx.neighbours, sims.topk(5, dim=-1).indices)


def test_bank_directions_exclude_b_pre(world):
    vals, idx = world.sae.encode_sparse(world.x_train)
    assert torch.allclose(world.ctx.bank_dirs, world.sae.decode(vals, idx, bias=False), atol=1e-6)


def test_vs2pp_pseudo_uses_zero_shot_labels_of_neighbours_and_query(world):
    s = world.s
    bank_pseudo, query_pseudo = s.logits(s.train.cls).argmax(-1), s.logits(s.test.cls).argmax(-1)
    want = vs2pp_expected(world, bank_pseudo, query_pseudo)
    wrong = {"ground truth": vs2pp_expected(world, s.train.labels, s.test.labels),
             "query's true label": vs2pp_expected(world, bank_pseudo, s.test.labels),
             "neighbours' true labels": vs2pp_expected(world, s.train.labels, query_pseudo),
             "gamma = 1": world.x,
             "b_pre in the bank directions": vs2pp_expected(
                 world, bank_pseudo, query_pseudo, dirs=world.sae.decode(*world.sae.encode_sparse(world.x_train)))}
    for name, w in wrong.items():
        assert differ(want, w), name
    out = RW.row_vs2pp_pseudo(world.ctx)
    assert out.method == "VS2++ (pseudo)" and torch.allclose(out.cls, want, atol=1e-5)


def test_vs2pp_oracle_uses_true_labels_of_neighbours_and_query(world):
    s = world.s
    bank_pseudo, query_pseudo = s.logits(s.train.cls).argmax(-1), s.logits(s.test.cls).argmax(-1)
    want = vs2pp_expected(world, s.train.labels, s.test.labels)
    wrong = {"pseudo-labels": vs2pp_expected(world, bank_pseudo, query_pseudo),
             "query's pseudo-label": vs2pp_expected(world, s.train.labels, query_pseudo),
             "gamma = 1": world.x,
             "b_pre in the bank directions": vs2pp_expected(
                 world, s.train.labels, s.test.labels, dirs=world.sae.decode(*world.sae.encode_sparse(world.x_train)))}
    for name, w in wrong.items():
        assert differ(want, w), name
    out = RW.row_vs2pp_oracle(world.ctx)
    assert out.method == "VS2++ (oracle)" and torch.allclose(out.cls, want, atol=1e-5)
    # the "majority" rule uses the neighbours' labels only
    nn_idx = world.ctx.neighbours
    maj = oracles.vs2pp_eq5(world.x, world.ctx.bank_dirs[nn_idx],
                            R.retrieval.positive_mask(s.train.labels[nn_idx], rule="majority"), GAMMA, LAM)
    out_maj = RW.row_vs2pp_oracle(replace(world.ctx, setup=s.with_settings(positive_rule="majority")))
    assert torch.allclose(out_maj.cls, maj, atol=1e-5)


def test_pass_row_uses_the_pass_sae(world):
    want = steer.vs2(world.x, world.pass_sae, GAMMA, LAM)
    assert differ(want, steer.vs2(world.x, world.sae, GAMMA, LAM))
    out = RW.row_pass(world.ctx)
    assert out.method == "VS2 + PASS" and torch.allclose(out.cls, want, atol=1e-6)


# ----------------------------------------------------------------------------------------- the SAEs
def same_weights(a, b):
    return all(torch.equal(p, b.state_dict()[k]) for k, p in a.state_dict().items())


def test_pass_sae_is_trained_with_the_true_train_labels(world):
    s = world.s
    kw = s.train_kwargs()
    pas, _ = trun.train_pass(s)
    right, _ = vs2mini.method.train.train_sae(s.train.cls, labels=s.train.labels, w_aux=s.profile.pass_.w_aux, progress=False, **kw)
    pseudo, _ = vs2mini.method.train.train_sae(s.train.cls, labels=s.logits(s.train.cls).argmax(-1), w_aux=s.profile.pass_.w_aux,
                                          progress=False, **kw)
    plain, _ = vs2mini.method.train.train_sae(s.train.cls, progress=False, **kw)
    assert same_weights(pas, right)
    assert not same_weights(pas, pseudo) and not same_weights(pas, plain)


def test_general_gate_data_uses_train_splits_union_and_tau_datasets(world, monkeypatch):
    s = world.s
    g = torch.Generator().manual_seed(5)
    other = Features(torch.randn(10, D, generator=g) + 3.0, torch.randn(10, D, generator=g), torch.zeros(10).long())
    feats = {"cub200": s.train, "other": other}
    gd, hist = trun.general_gate_data(s, world.sae, train_datasets=("cub200", "other"), tau_datasets=("other",),
                                   train_features=feats.__getitem__)
    union = torch.cat([s.train.cls, other.cls])
    assert hist is None and gd.sae is world.sae
    assert torch.allclose(gd.mu, union.mean(0), atol=1e-5) and torch.equal(gd.x_tau, other.cls)
    # trained on the union of the train splits, with the profile's settings and no labels
    gd2, hist2 = trun.general_gate_data(s, train_datasets=("cub200", "other"), train_features=feats.__getitem__)
    want, _ = vs2mini.method.train.train_sae(union, progress=False, **s.train_kwargs())
    assert same_weights(gd2.sae, want) and torch.equal(gd2.x_tau, union) and hist2["step"]
    # the profile's gate datasets are the defaults; the evaluated dataset is not added (out-of-domain evaluation)
    s_ood = s.with_settings(sae_datasets=("other",))
    gd4, _ = trun.general_gate_data(s_ood, world.sae, train_features=feats.__getitem__)
    assert gd4.train_datasets == gd4.tau_datasets == ("other",) and torch.allclose(gd4.mu, other.cls.mean(0))
    # the default loader asks for the TRAIN split of the other datasets
    asked = []
    monkeypatch.setattr(trun, "load_dataset", lambda name, split, limit=None: asked.append((name, split)) or name)
    monkeypatch.setattr(trun, "cached_features", lambda clip, ds, **kw: other)
    gd3, _ = trun.general_gate_data(s, world.sae, train_datasets=("cub200", "other"))
    assert asked == [("other", "train")] and torch.allclose(gd3.mu, union.mean(0), atol=1e-5)


# -------------------------------------------------------------------------------------- run_reproduce
def test_run_reproduce_feeds_the_rows_the_given_saes(world, monkeypatch):
    seen, rows_fns = [], RW.ROWS
    monkeypatch.setattr(R, "ROWS", RW.ROWS + (lambda c: seen.append(c),))
    res = R.run_reproduce(run=trun.Run.of(world.s, sae=world.sae, pass_sae=world.pass_sae, gate=world.general))
    (c,) = seen
    assert c.sae is world.sae and c.pass_sae is world.pass_sae and c.general is world.general
    assert (c.gamma, c.lam, c.gate_q, c.positive_rule) == (1.5, 2.1, Q, "query")
    rows = {r.label: r.ours for r in res.rows}
    assert res.name == "main" and res.columns == [R.TOP1, R.GAIN, R.SE, R.STEERED]
    assert list(rows) == ["CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "centroid steering (no SAE)", "VS2",
                          "  VS2 centroid part", "  VS2 residual part", "VS2 (generalized SAE)",
                          "VS2 + FVU gate", "VS2 + FVU gate (in-domain tau)", "VS2++ (pseudo)", "VS2++ (oracle)",
                          "VS2 + PASS"]
    for f in rows_fns:
        out = f(world.ctx)
        acc = world.s.accuracy(out.cls)
        assert rows[out.method][R.TOP1] == pytest.approx(acc), out.method
        assert rows[out.method][R.GAIN] == pytest.approx(acc - world.s.accuracy(world.x)), out.method
        assert rows[out.method][R.STEERED] == (None if out.coverage is None else pytest.approx(100 * out.coverage))
    # a toy run: the paper column holds the paper's CIFAR-100 ViT-B/32 numbers, and the table says so
    assert res.row("VS2").paper == {R.TOP1: R.PAPER["VS2"][("cifar100", "ViT-B-32")]}
    assert res.row("  VS2 centroid part").paper == {R.TOP1: None}
    assert "not this run's" in res.paper_setting


def test_run_reproduce_trains_plain_and_labelled_pass_saes(world, monkeypatch):
    seen = []
    monkeypatch.setattr(R, "ROWS", (lambda c: seen.append(c),))
    R.run_reproduce(run=trun.Run.of(world.s, gate=world.general))
    (c,) = seen
    s = world.s
    plain, _ = s.train_sae(progress=False)
    pas, _ = trun.train_pass(s)
    assert same_weights(c.sae, plain) and same_weights(c.pass_sae, pas) and not same_weights(c.sae, c.pass_sae)
    seen.clear()
    assert s.profile.pass_.variant == "eq7"                             # the default; the override below differs
    res = R.run_reproduce(run=trun.Run.of(world.s.with_settings(variant="ratio"), gate=world.general))
    ratio, _ = trun.train_pass(s.with_settings(variant="ratio"))
    assert same_weights(seen[0].pass_sae, ratio) and res.settings["pass_variant"] == "ratio"
    assert not same_weights(ratio, pas)


def test_pass_tradeoff_rows(world):
    """One row per (variant, w_aux) with w_aux = 0 first; each row's numbers are those of the SAE trained with it."""
    rows = ablations.pass_tradeoff(world.s, w_aux=(0.8,), variants=("eq7", "ratio"))
    assert [(r["variant"], r["w_aux"]) for r in rows] == [("eq7", 0.0), ("eq7", 0.8), ("ratio", 0.0), ("ratio", 0.8)]
    sae, _ = trun.train_pass(world.s.with_settings(variant="eq7"))
    assert rows[1]["test_fvu"] == pytest.approx(sae.fvu(world.x))
    assert rows[1]["vs2_top1"] == pytest.approx(world.s.accuracy(steer.vs2(world.x, sae, GAMMA, LAM)))
    assert rows[0]["test_fvu"] == pytest.approx(rows[2]["test_fvu"])   # no PASS: the variant plays no part
    assert all(0.0 <= r["within_class_fraction"] <= 1.0 for r in rows)


def test_generalized_sae_of_one_dataset_is_the_target_sae(world, monkeypatch):
    """With the gate's union = this dataset alone, training again would give the same SAE: it is reused."""
    seen = []
    monkeypatch.setattr(R, "ROWS", (lambda c: seen.append(c),))
    res = R.run_reproduce(run=trun.Run.of(world.s, sae=world.sae, pass_sae=world.pass_sae))
    g = seen[0].general
    assert g.sae is world.sae and g.train_datasets == g.tau_datasets == ("cub200",)
    assert torch.allclose(g.mu, world.x_train.mean(0), atol=1e-5) and torch.equal(g.x_tau, world.x_train)
    assert res.settings["gate_datasets"] == {"sae": ["cub200"], "tau": ["cub200"]}


def test_paper_fvu_beside_ours_only_for_openai_weights(world):
    # (trun.paper_fvu itself: tests/tables/test_run.py)
    lines = R.training_lines({
        "target-domain": {"steps": 1000, "epochs": 1000, "selected_epoch": 640, "train_fvu": 0.21,
                          "heldout_fvu": 0.3, "test_fvu": 0.31, "paper_fvu": 0.2487},
        "PASS": {"steps": None, "epochs": None, "selected_epoch": None, "train_fvu": None, "heldout_fvu": None,
                 "test_fvu": 0.5, "paper_fvu": None}})
    assert lines == ["SAE target-domain: 1000 steps (1000 epochs, selected epoch 640), FVU train 0.2100 / held-out "
                     "0.3000 / test 0.3100, paper (Table 6) 0.2487",
                     "SAE PASS: given to the run (not trained by it), FVU train - / held-out - / test 0.5000"]


# ------------------------------------------------------------- centroid steering and VS2's two parts (Prop. 3.1)
def test_vs2_is_its_centroid_part_plus_its_residual_part(world):
    x, sae = world.x, world.sae
    v_c, v_r = steer.vs2_parts(x, sae, GAMMA)
    torch.testing.assert_close(v_c, (GAMMA - 1) * (x - sae.b_pre))                   # by hand
    torch.testing.assert_close(v_r, (GAMMA - 1) * (sae.reconstruct(x) - x))
    torch.testing.assert_close(v_c + v_r, steer.vs2_vector(x, sae, GAMMA), rtol=0, atol=1e-6)
    torch.testing.assert_close(steer.apply_steering(x, v_c + v_r, LAM), steer.vs2(x, sae, GAMMA, LAM),
                               rtol=0, atol=1e-6)
    out_c, out_r = RW.row_vs2_centroid_part(world.ctx), RW.row_vs2_residual_part(world.ctx)
    torch.testing.assert_close(out_c.cls, steer.apply_steering(x, v_c, LAM))
    torch.testing.assert_close(out_r.cls, steer.apply_steering(x, v_r, LAM))


def test_centroid_alpha_is_vs2s_alpha():
    assert steer.centroid_alpha(1.5, 2.1) == pytest.approx(1.05)
    assert steer.centroid_alpha(1.0, 3.0) == 0.0
    # with mu = b_pre, centroid steering is VS2's centroid part exactly
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, D, generator=g)
    sae = random_sae(4, [0.2, -0.1, 0.3, 0.0])
    v_c, _ = steer.vs2_parts(x, sae, GAMMA)
    torch.testing.assert_close(steer.centroid_steering(x, sae.b_pre, steer.centroid_alpha(GAMMA, LAM)),
                               steer.apply_steering(x, v_c, LAM))
    with pytest.raises(ValueError, match="mu must be a mean"):
        steer.centroid_steering(x, x, 1.0)


def test_centroid_row_uses_the_unlabelled_train_mean(world):
    x, xt, s = world.x, world.x_train, world.s
    alpha = LAM * (GAMMA - 1)
    want = steer.centroid_steering(x, xt.mean(0), alpha)
    wrong = {"test mean": x.mean(0), "b_pre": world.sae.b_pre,
             "class-balanced train mean (labels)": torch.stack([xt[s.train.labels == k].mean(0) for k in range(C)]).mean(0),
             "test class means": torch.stack([x[s.test.labels == k].mean(0) for k in range(C)]).mean(0)}
    for name, mu in wrong.items():
        assert differ(want, steer.centroid_steering(x, mu, alpha)), name
    out = RW.row_centroid(world.ctx)
    assert out.method == "centroid steering (no SAE)"
    torch.testing.assert_close(out.cls, want, rtol=0, atol=1e-6)
    # labels play no part: shuffled train and test labels leave the row unchanged
    perm = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(5))
    s2 = replace(s, train=replace(s.train, labels=s.train.labels[perm]),
                 test=replace(s.test, labels=(s.test.labels + 1) % C))
    ctx2 = RW.Context(s2, world.sae, world.pass_sae, world.general)
    torch.testing.assert_close(RW.row_centroid(ctx2).cls, want, rtol=0, atol=1e-6)


def test_paired_se_by_hand():
    from vs2mini.method.metrics import paired_se
    right, base = torch.tensor([1, 1, 0, 0]).bool(), torch.tensor([1, 0, 0, 1]).bool()
    # d = (0, 1, 0, -1): mean 0, sample variance 2/3, se = sqrt(2/3) / 2
    assert paired_se(right, base) == pytest.approx(100 * (2 / 3) ** 0.5 / 2)
    assert paired_se(right, right) == 0.0
    with pytest.raises(ValueError):
        paired_se(right, base[:3])


def test_shift_grid_rows_take_the_right_sae_and_mean(world):
    from vs2mini.tables import shift as ST
    s, x = world.s, world.x
    mu = world.x_train.mean(0)
    d = ST.Domain(8, s, world.sae, world.pass_sae, mu)
    ref_sae = random_sae(7, [-0.4, 0.5, 0.1, -0.2])
    ref = ST.Domain(32, s, ref_sae, world.pass_sae, torch.tensor([0.9, -0.6, 0.3, 0.2]))
    cells = {c.method: c for c in ST.domain_rows(d, ref)}
    assert tuple(cells) == ST.GRID_ROWS
    acc = s.accuracy
    alpha = steer.centroid_alpha(GAMMA, LAM)
    checks = {
        "VS2": (steer.vs2(x, world.sae, GAMMA, LAM), steer.vs2(x, ref_sae, GAMMA, LAM)),
        "VS2 with the 32-px SAE (wrong centroid)": (steer.vs2(x, ref_sae, GAMMA, LAM), steer.vs2(x, world.sae, GAMMA, LAM)),
        "re-centring on the 32-px mean": (steer.rescale_to(x - mu + ref.mu, x), x),
        "centroid steering with the 32-px mean (wrong centroid)": (steer.centroid_steering(x, ref.mu, alpha),
                                                                   steer.centroid_steering(x, mu, alpha)),
        "centroid steering (no SAE)": (steer.centroid_steering(x, mu, alpha), steer.centroid_steering(x, ref.mu, alpha)),
    }
    for name, (right, wrong) in checks.items():
        assert acc(right) != acc(wrong), f"stub cannot tell the wirings of {name!r} apart"
        assert cells[name].top1 == pytest.approx(acc(right)), name
        assert cells[name].delta == pytest.approx(acc(right) - acc(x)), name
    assert cells["CLIP zero-shot"].delta == 0 and cells["CLIP zero-shot"].se == 0
