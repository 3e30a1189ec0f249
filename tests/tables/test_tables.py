"""Every table of vs2mini.experiments on the offline set-up: known answers, invariants, and which pieces feed rows."""
from __future__ import annotations

import json
from dataclasses import replace

import open_clip
import pytest
import torch

from vs2mini.clip import depth
from vs2mini.tables import registry as experiments
from vs2mini.tables import ablations
from vs2mini.tables import baselines as tbaselines
from vs2mini.tables import result as tresult
from vs2mini.tables import shift
from vs2mini import paper
from vs2mini.method import steer
from vs2mini.method.pass_loss import prototype_directions
from vs2mini.cli import main
from vs2mini.config import get_profile
from vs2mini.tables.main import run_reproduce
from vs2mini.tables.run import Run


SMALL = dict(n_train=2000, n_test=500)     # a seeded subset of the toy world: each SAE trains in about a second


@pytest.fixture(scope="module")
def small_setup(_isolated_env):
    from vs2mini.pipeline import load_setup
    return load_setup(get_profile("toy", **SMALL), progress=False)


def rows(res):
    return {r.label: r for r in res.rows}


def test_table_text_has_paper_beside_ours_and_one_warning():
    res = tresult.TableResult("depth", "Table 7", "toy run", "paper setting", False, ["top-1"],
                                  [tresult.TableRow("VS2", {"top-1": 12.345}, {"top-1": 68.08})],
                                  banner="TOY MODEL: not real")
    text = res.table()
    assert text.count("TOY MODEL: not real") == 1
    assert "12.35   68.08" in text
    back = json.loads(res.to_json())
    assert back["rows"][0]["paper"] == {"top-1": 68.08} and back["warning"] == "TOY MODEL: not real"
    assert "TOY" not in replace(res, real=True).table()


def test_every_table_is_registered_with_a_source():
    assert {"prompts", "sweep-width-k", "sweep-gamma-lambda", "sweep-neighbours", "baselines", "depth",
            "vit-l14"} <= set(experiments.TABLES)
    assert all(t.source and t.help for t in experiments.TABLES.values())
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        experiments.run_table("nope", "toy")


def test_prompts_ens_equals_single_when_the_profile_already_ensembles(small_setup):
    s = small_setup.with_settings(templates="cifar18")
    from vs2mini.clip.models import zeroshot_head
    s = replace(s, head=zeroshot_head(s.clip, s.classnames, "cifar18"))
    r = rows(ablations.prompts(s))
    assert r["Ens"].ours["top-1"] == r["CLIP zero-shot"].ours["top-1"]
    assert r["VS2 + Ens"].ours["top-1"] == r["VS2"].ours["top-1"]
    assert r["TPT"].ours["top-1"] is None and r["Ens"].paper["top-1"] == 63.66     # CIFAR-100 B/32 by default


def test_sweep_width_k_cosines(small_setup):
    k = small_setup.profile.k_for(small_setup.clip.name)
    res = ablations.sweep_width_k(small_setup, configs=[(4, k), (2, k), (4, k)])
    cos = torch.tensor(res.matrices[0].values)
    torch.testing.assert_close(cos, cos.T)
    torch.testing.assert_close(cos.diagonal(), torch.ones(3))
    assert cos[0, 2].item() == pytest.approx(1.0, abs=1e-5)           # the same config (seeded): the same vectors
    assert cos[0, 1].item() < 0.999                                   # another width: other vectors
    r = res.rows
    assert r[0].ours == r[2].ours and r[0].ours["top-5"] >= r[0].ours["top-1"]
    assert ablations.width_k_grid(replace(small_setup, profile=get_profile("full"))) == list(paper.TABLE_8)


def test_lite_trains_a_subset_of_table_8_that_fits_the_book_build(small_setup):
    """lite's grid: configurations of the paper's Table 8 only, the profile's own SAE among them (reused, not
    retrained), and at most a third of the width-cost of all 13 (SAE step cost grows with the width)."""
    lite = get_profile("lite")
    grid = ablations.width_k_grid(replace(small_setup, profile=lite))
    assert grid == list(lite.tables.width_k_grid) and set(grid) <= set(paper.TABLE_8) and len(set(grid)) == len(grid)
    assert (lite.sae.expansion, lite.k_for(lite.model)) in grid
    assert sum(e for e, _ in grid) <= sum(e for e, _ in paper.TABLE_8) / 3


def test_sweep_gamma_lambda_gamma_one_is_zero_shot(small_setup):
    res = ablations.sweep_gamma_lambda(small_setup, gammas=[1.0, 2.0], lams=[0.5, 3.0])
    zs = small_setup.accuracy(small_setup.test.cls)
    assert list(rows(res)["gamma=1"].ours.values()) == pytest.approx([zs, zs], abs=1e-5)
    assert res.matrices[0].values[0] == pytest.approx([0.0, 0.0], abs=1e-5)


def test_sweep_neighbours_at_the_profile_n_matches_reproduce(small_setup):
    p = small_setup.profile
    res = ablations.sweep_neighbours(small_setup, counts=(10, p.steer.n_neighbours, 10_000))
    assert [r.label for r in res.rows] == ["N=10", f"N={p.steer.n_neighbours}", f"N={len(small_setup.train.labels)}"]
    main_table = run_reproduce(run=Run.of(small_setup))
    ref = main_table.column("top-1")
    ours = rows(res)[f"N={p.steer.n_neighbours}"].ours
    assert ours["pseudo top-1"] == ref["VS2++ (pseudo)"] and ours["oracle top-1"] == ref["VS2++ (oracle)"]


def test_weighted_rag_extremes(small_setup):
    s = small_setup
    sims, idx = tbaselines.retrieval.knn(s.test.emb, s.train.emb, 3)
    unit = lambda e: torch.nn.functional.normalize(e, dim=-1)                                # noqa: E731
    torch.testing.assert_close(tbaselines.weighted_rag(s, sims, idx, 1.0, 3), unit(s.test.emb))   # the query
    torch.testing.assert_close(tbaselines.weighted_rag(s, sims, idx, 0.0, 1), unit(s.train.emb[idx[:, 0]]))
    # alpha 0, k 2: the similarity-weighted mean of the two nearest
    w = sims[:, :2] / sims[:, :2].sum(-1, keepdim=True)
    ref = w[:, :1] * unit(s.train.emb[idx[:, 0]]) + w[:, 1:] * unit(s.train.emb[idx[:, 1]])
    torch.testing.assert_close(tbaselines.weighted_rag(s, sims, idx, 0.0, 2), ref)


def test_oracle_prototypes_use_the_true_class_and_gamma_one_is_identity(small_setup):
    s = small_setup
    sae = s.train_sae(progress=False)[0]
    same = tbaselines.oracle_prototypes(s.with_settings(gamma=1.0), sae)
    torch.testing.assert_close(same.cpu(), s.test.cls)
    strong = s.with_settings(gamma=3.0, lam=50.0)
    steered = tbaselines.oracle_prototypes(strong, sae)
    # pushed hard along the true class's prototype, images end up closer to it than unsteered ones
    protos = prototype_directions(sae, s.train.cls, s.train.labels, len(s.classnames))
    cos = lambda x: torch.nn.functional.cosine_similarity(  # noqa: E731
        x.cpu() - sae.b_pre, protos[s.test.labels], dim=-1)
    assert cos(steered).mean() > cos(s.test.cls).mean()


def test_baselines_rows_and_rag_grid(small_setup):
    res = tbaselines.baselines(small_setup)
    r = rows(res)
    assert {"CLIP zero-shot", "CLIP Steering (oracle)", "VS2++ (oracle)", "CLIP Steering (pseudo)", "VS2++ (pseudo)",
            "Weighted RAG (oracle: tuned on test labels)", "Weighted RAG (held-out choice)",
            "Oracle prototypes"} == set(r)
    grid = res.matrices[0].values
    assert r["Weighted RAG (oracle: tuned on test labels)"].ours["top-1"] == max(max(row) for row in grid)
    assert r["Oracle prototypes"].paper["top-1"] == 97.5 and r["CLIP Steering (oracle)"].paper["top-1"] == 81.85


def test_depth_table_last_layer_row_is_final_layer_vs2(small_setup):
    s = small_setup
    n = depth.n_layers(s.clip)
    assert ablations.depth_configs(12) == [(12,), (11, 12), (10, 11, 12)]
    assert ablations.depth_configs(2) == [(2,), (1, 2)]
    res = ablations.depth(s)
    r = rows(res)
    sae = s.train_sae(progress=False)[0]                   # the same data and seed as the table's layer-n SAE
    ref = s.accuracy(steer.vs2(s.test.cls, sae, s.profile.steer.gamma, s.profile.steer.lam))
    assert r[f"VS2 at layer {n}"].ours["top-1"] == pytest.approx(ref)
    assert r[f"VS2 at layer {n}"].paper["top-1"] == 68.08 and r["SAE^A_REC"].paper["top-1"] == 64.05


def test_vit_l14_configuration_and_path():
    assert ablations.vit_l14_model(get_profile("full")) == ("ViT-L-14", "openai")
    assert ablations.vit_l14_model(get_profile("toy")) == (None, "")
    assert get_profile("full").k_for("ViT-L-14-quickgelu") == paper.TABLE_9_SETTING["k"]
    assert open_clip.get_model_config("ViT-L-14")["vision_cfg"]["layers"] == paper.TABLE_9_SETTING["block"] + 1
    res = experiments.run_table("vit-l14", get_profile("toy", **SMALL))
    sae_note = rows(res)["VS2"].note
    d = 64                                              # the toy model's width
    assert f"{10 * d} latents (10x)" in sae_note
    assert rows(res)["VS2"].paper["top-1"] == 74.12


def test_cli_table_json_and_help(tmp_path, capsys, monkeypatch):
    from vs2mini import config as profiles
    monkeypatch.setitem(profiles.PROFILES, "toy", profiles.PROFILES["toy"].set(**SMALL))
    out = tmp_path / "t.json"
    argv = ["reproduce", "--profile", "toy", "--quiet", "--table", "sweep-gamma-lambda", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.count(get_profile("toy").banner) == 1                          # the offline warning, once
    res = json.loads(out.read_text())
    assert res["name"] == "sweep-gamma-lambda" and res["real"] is False and res["rows"]
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in experiments.TABLES)


def test_ood_gate_on_the_offline_domains(small_setup, monkeypatch):
    p = small_setup.profile
    train_on, tau_on, evaluate = shift.ood_gate_datasets(p)
    assert shift.ood_gate_datasets(get_profile("full")) == (paper.MAIN_DATASETS, ("cifar100", "tinyimagenet"),
                                                                   paper.TABLE_3_COLUMNS)
    setups = {ds: small_setup for ds in set(train_on + tau_on + evaluate) if ds == small_setup.dataset}
    # Record what the gate sees (the tensors themselves), then recompute every gate row by hand from them: the rows
    # are checked as functions of the data, never against a value that one torch/BLAS version happens to give.
    gates, thresholds = [], []
    real_gate, real_threshold = steer.gate, steer.fvu_threshold
    monkeypatch.setattr(steer, "gate", lambda x, xs, fvu, tau: gates.append((x, xs, fvu, tau)) or
                        real_gate(x, xs, fvu, tau))
    monkeypatch.setattr(steer, "fvu_threshold", lambda f, q: thresholds.append((f, q)) or real_threshold(f, q))
    qs = (1e-6, 0.5, 0.9, 1.0)
    res = shift.ood_gate(qs=qs, run=Run.of(*setups.values(), profile=p))
    r = rows(res)
    ds = train_on[0]
    zs, gen = r["CLIP zero-shot"].ours[ds], r["VS2 (generalized SAE)"].ours[ds]
    assert zs == pytest.approx(small_setup.accuracy(small_setup.test.cls))
    assert [q for _, q in thresholds] == list(qs) and len(gates) == len(qs) * len(evaluate)
    train_fvu = thresholds[0][0].double().cpu().numpy()
    assert all(t[0] is thresholds[0][0] for t in thresholds)            # one tau sample for every q
    for i, other in enumerate(evaluate):                                 # gates run dataset by dataset, q by q
        for q, (_, _, fvu, tau) in zip(qs, gates[i * len(qs):]):
            assert r[f"  coverage % (q={q:g})"].ours[other] == pytest.approx(100.0 * (fvu <= tau).double().mean())
    assert evaluate[0] == ds
    cov = [r[f"  coverage % (q={q:g})"].ours[ds] for q in qs]
    for q, c, (x, xs, fvu, tau) in zip(qs, cov, gates):
        assert train_fvu.min() <= tau <= train_fvu.max()
        if q == 1.0:
            assert tau == pytest.approx(train_fvu.max())                # the largest training FVU
        steered = fvu.cpu().numpy() <= tau                               # by hand, from the same tensors
        assert c == pytest.approx(100.0 * steered.mean())
        by_hand = torch.where(torch.as_tensor(steered)[:, None].to(x.device), xs, x)
        assert r[f"VS2 + FVU gate (q={q:g})"].ours[ds] == pytest.approx(small_setup.accuracy(by_hand))
        if c == 0.0:
            assert r[f"VS2 + FVU gate (q={q:g})"].ours[ds] == zs         # nothing steered: zero-shot
        if c == 100.0:
            assert r[f"VS2 + FVU gate (q={q:g})"].ours[ds] == gen        # everything steered: ungated
    assert [t for *_, t in gates[:len(qs)]] == sorted(t for *_, t in gates[:len(qs)])   # tau grows with q ...
    assert cov == sorted(cov)                                            # ... so a higher quantile steers more
    assert res.matrices or r["CLIP zero-shot"].paper                    # the paper's Table 3 is shown


def test_table_3_paper_lookup():
    assert shift._table_3("VS2 + FVU gate (q=0.95)", ["sun397", "toy"]) == {"sun397": 51.80}
    assert shift._table_3("  coverage % (q=0.995)", ["eurosat"]) == {"eurosat": 92.09}
    assert shift._table_3("CLIP zero-shot", ["cifar100"]) == {"cifar100": 61.07}


def test_run_all_shares_one_setup_per_dataset(monkeypatch, small_setup):
    from vs2mini.tables import run as trun
    loads, seen, trained, runs = [], [], [], []   # runs: the Run objects themselves (an id() can be reused)
    monkeypatch.setattr(trun, "load_setup", lambda p, ds, **kw: loads.append(ds) or small_setup)

    def fake(name, per_dataset):
        def run(*args, **kw):
            if per_dataset:
                seen.append((name, args[0] is small_setup))
                shared = kw["sae"]
            else:                                     # the multi-dataset tables get the run itself
                seen.append((name, kw["dataset"]))
                shared = kw["run"].sae(kw["dataset"])
                runs.append(kw["run"])
            assert shared == "the profile SAE"
            return name
        return experiments.Table(name, "src", run, "help", per_dataset)
    tables = {"a": fake("a", True), "multi": fake("multi", False), "b": fake("b", True)}
    monkeypatch.setattr(experiments, "TABLES", tables)
    monkeypatch.setattr(type(small_setup), "train_sae", lambda self, **kw: trained.append(1) or ("the profile SAE", {}))
    assert list(experiments.run_all("toy")) == ["a", "b", "multi"]
    assert seen == [("a", True), ("b", True), ("multi", None)]        # per-dataset tables got the shared set-up
    assert loads == [get_profile("toy").datasets[0]] and len(trained) == 1   # loaded once, trained once
    seen.clear()
    assert list(experiments.run_all("toy", ["x"])) == ["a", "b", "multi"] and seen[-1] == ("multi", "x")
    assert loads[-1] == "x" and len(loads) == 2 and len(trained) == 2
    assert len(runs) == 2 and runs[0] is not runs[1]                   # one Run per run_all


def test_tables_reuse_a_given_profile_sae(monkeypatch, small_setup):
    s = small_setup
    sae = s.train_sae(progress=False)[0]
    monkeypatch.setattr(type(s), "train_sae", lambda self, **kw: pytest.fail("trained an SAE it was given"))
    k = s.profile.k_for(s.clip.name)
    vs2 = s.accuracy(steer.vs2(s.test.cls, sae, s.profile.steer.gamma, s.profile.steer.lam))
    assert rows(ablations.prompts(s, sae=sae))["VS2"].ours["top-1"] == pytest.approx(vs2)
    assert ablations.sweep_width_k(s, [(s.profile.sae.expansion, k)], sae=sae).rows[0].ours["top-1"] == pytest.approx(vs2)
    grid = ablations.sweep_gamma_lambda(s, [s.profile.steer.gamma], [s.profile.steer.lam], sae=sae)
    assert grid.rows[0].ours[f"lambda={s.profile.steer.lam:g}"] == pytest.approx(vs2, abs=1e-4)
    ablations.sweep_neighbours(s, counts=(5,), sae=sae)
    tbaselines.baselines(s, sae=sae)


def test_depth_without_every_layer_trains_only_the_steered_layers(small_setup, monkeypatch):
    s = small_setup
    n = depth.n_layers(s.clip)
    assert get_profile("lite").tables.depth_every_layer is False and get_profile("full").tables.depth_every_layer
    full = rows(ablations.depth(s))
    trained, asked = [], []
    real_train, real_feats = ablations._train_on, depth.layer_features
    monkeypatch.setattr(ablations, "_train_on", lambda s_, X, *a, **kw: trained.append(X) or real_train(s_, X, *a, **kw))
    monkeypatch.setattr(depth, "layer_features", lambda c, ds, layers, *a, **kw: asked.append(list(layers))
                        or real_feats(c, ds, layers, *a, **kw))
    # the toy tower has 2 layers, all of them steered by Table 7's configurations: steer the last one only, so
    # that "only the steered layers" and "every layer" differ
    monkeypatch.setattr(ablations, "depth_configs", lambda n_: [(n_,)])
    res = ablations.depth(s.with_settings(depth_every_layer=False))
    assert asked == [[n]] and len(trained) == 1 and n > 1
    r = rows(res)
    assert "SAE^A_REC" not in r and any("SAE^A_REC left out" in note for note in res.notes)
    for label, row in r.items():             # the same SAE per steered layer: the same numbers as the full table
        assert row.ours["top-1"] == full[label].ours["top-1"], label


def test_pass_tradeoff_trains_the_plain_sae_once_and_reuses_given_saes(small_setup, monkeypatch):
    from vs2mini.pipeline import Setup
    s = small_setup
    calls = []
    real = Setup.train_sae
    monkeypatch.setattr(Setup, "train_sae", lambda self, **kw: calls.append(kw) or real(self, **kw))
    fresh = ablations.pass_tradeoff(s, w_aux=(0.5,), variants=("eq7", "ratio"))
    assert [(c.get("w_aux"), c.get("pass_variant")) for c in calls] == [(0.0, "eq7"), (0.5, "eq7"), (0.5, "ratio")]
    assert calls[0]["labels"] is None and all(c["labels"] is s.train.labels for c in calls[1:])
    assert [(r["variant"], r["w_aux"]) for r in fresh] == [("eq7", 0.0), ("eq7", 0.5), ("ratio", 0.0), ("ratio", 0.5)]
    assert fresh[0]["vs2_top1"] == fresh[2]["vs2_top1"]          # one plain SAE serves both variants
    given = {0.0: real(s), 0.5: real(s, labels=s.train.labels, w_aux=0.5)}
    calls.clear()
    reused = ablations.pass_tradeoff(s, w_aux=(0.5,), variants=("eq7", "ratio"), saes=given)
    assert [(c.get("w_aux"), c.get("pass_variant")) for c in calls] == [(0.5, "ratio")]
    for a, b in zip(fresh, reused):          # the given SAEs were trained the same way: the same rows
        assert a["vs2_top1"] == b["vs2_top1"] and a["test_fvu"] == pytest.approx(b["test_fvu"], rel=1e-6)
