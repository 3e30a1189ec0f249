"""The paper's ablations beyond the main table, one small function per table on a shared `Setup`: prompt ensembles
(Table 1b), SAE width x k (Tables 8, 16), the (gamma, lambda) grid (Figs. 3, 5), VS2++ neighbours (Fig. 7), depth
(Table 7, SAE^A_REC), ViT-L/14 (Table 9), and the PASS trade-off (the shape of Table 12).

    res = registry.run_table("sweep-width-k", "toy")       # or: python -m vs2mini reproduce --table sweep-width-k
    print(res.table())                                     # ours beside the paper's numbers

Each returns a `TableResult` (vs2mini.tables.result). Offline profiles run small grids in seconds; real profiles
run the paper's grids. Where the paper is silent the function says what it chose (in `notes`).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .. import paper
from ..clip import depth as depth_mod
from ..clip.models import zeroshot_head
from ..config import Profile
from ..method import steer, train
from ..method.pass_loss import pass_loss
from ..method.sae import TopKSAE
from ..pipeline import Setup
from .result import Matrix, TableResult, TableRow, _paper_key, _result, _table_1a
from .run import (_accuracy, _is_config, _masks, _positives_note, _profile_sae, _train_on, neighbour_indices,
                  vs2pp_labels)


def prompts(s: Setup, progress: bool = False, sae: TopKSAE | None = None) -> TableResult:
    """Table 1b: prompt ensembling (Ens, the CLIP paper's 18 CIFAR templates) alone and with VS2."""
    key, ps = _paper_key(s)
    col = "top-1"
    res = _result("prompts", s, [col], ps + "; Table 1b is ViT-B/32 only", templates=s.profile.data.templates)
    x = s.test.cls.to(s.clip.device)
    ens = zeroshot_head(s.clip, s.classnames, "cifar18")
    sae = _profile_sae(s, sae, progress)
    vs2_x = steer.vs2(x, sae, s.profile.steer.gamma, s.profile.steer.lam)
    ours = {"CLIP zero-shot": _accuracy(s, x), "Ens": _accuracy(s, x, ens), "VS2": _accuracy(s, vs2_x),
            "VS2 + Ens": _accuracy(s, vs2_x, ens)}
    j = paper.TABLE_1B_COLUMNS.index(key[0])
    for label, values in paper.TABLE_1B.items():
        res.rows.append(TableRow(label, {col: ours.get(label)}, {col: values[j]},
                                 "" if label in ours else "not implemented in vs2mini"))
    res.notes += ["Ens = the 18 CIFAR templates of the CLIP paper (the paper does not state its template set); "
                  "zero-shot and VS2 use the profile's templates",
                  f"VS2 + Ens steers with the same SAE (gamma {s.profile.steer.gamma}, lambda {s.profile.steer.lam}) "
                  "and classifies with the ensembled head"]
    return res


def width_k_grid(s: Setup) -> list[tuple[int, int]]:
    """Table 8's (expansion, k) configurations for real profiles (the profile's `width_k_grid` if it names some, e.g.
    lite's CPU budget). Offline three (the profile's SAE, half its width, half its k): one step along each axis
    keeps the table to seconds."""
    if s.profile.real:
        return list(s.profile.tables.width_k_grid or paper.TABLE_8)
    e, k = s.profile.sae.expansion, s.profile.k_for(s.clip.name)
    return [(max(1, e // 2), k), (e, max(1, k // 2)), (e, k)]


def sweep_width_k(s: Setup, configs: list[tuple[int, int]] | None = None, progress: bool = False,
                  sae: TopKSAE | None = None) -> TableResult:
    """Table 8 (VS2 top-1 / top-5 by SAE width x k) and Table 16 (mean cosine of the VS2 vectors across configs)."""
    configs = configs or width_k_grid(s)
    _, ps = _paper_key(s)
    res = _result("sweep-width-k", s, ["top-1", "top-5"], ps + "; Tables 8 and 16 are ViT-B/32 CIFAR-100")
    x = s.test.cls.to(s.clip.device)
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    vectors = []
    for e, k in configs:
        this = sae if _is_config(sae, e, k) else s.train_sae(progress=progress, expansion=e, k=k)[0]
        steered = steer.vs2(x, this, g, lam)
        vectors.append(torch.nn.functional.normalize(steer.vs2_vector(x, this, g), dim=-1))
        pv = paper.TABLE_8.get((e, k), (None, None))
        res.rows.append(TableRow(f"{e}x, k={k}", {"top-1": _accuracy(s, steered), "top-5": _accuracy(s, steered, k=5)},
                                 {"top-1": pv[0], "top-5": pv[1]}))
    V = torch.stack(vectors)                                    # (configs, N, d) unit steering vectors
    cos = torch.einsum("and,bnd->abn", V, V).mean(-1)           # mean over test images of cos(v_a, v_b)
    labels = [f"{e}x/{k}" for e, k in configs]
    res.matrices.append(Matrix("Table 16: mean cosine of VS2 steering vectors (ours)", labels, labels, cos.tolist()))
    t8 = sorted(paper.TABLE_8.items(), key=lambda kv: -kv[1][0])
    if not any(cfg in paper.TABLE_8 for cfg in configs):
        res.notes.append("paper Table 8 (top-1 / top-5): " + "; ".join(f"{e}x/k={k}: {a:.2f} / {b:.2f}"
                                                                       for (e, k), (a, b) in t8))
    off = [v for i, r in enumerate(paper.TABLE_16) for j, v in enumerate(r) if i != j]
    res.notes += [f"paper Table 16: off-diagonal cosines from {min(off):.3f} to {max(off):.3f} "
                  f"(mean {sum(off) / len(off):.3f}); Table 8: top-1 varies by less than 1 point",
                  f"gamma {g}, lambda {lam}; top-5 over {len(s.classnames)} classes"]
    return res


def gamma_lambda_grid(s: Setup) -> tuple[list[float], list[float]]:
    """Figs. 3/5 axes (gamma 1-3, lambda 0-10, read from the figures) for real profiles; 4 x 4 offline."""
    if s.profile.real:
        return [1.0, 1.25, 1.5, 2.0, 2.5, 3.0], [0.5, 1.0, 2.0, 2.1, 3.0, 5.0, 7.5, 10.0]
    return [1.0, 1.5, 2.0, 3.0], [0.5, 1.0, 2.1, 5.0]


def sweep_gamma_lambda(s: Setup, gammas=None, lams=None, progress: bool = False,
                       sae: TopKSAE | None = None) -> TableResult:
    """Figs. 3 and 5: VS2 top-1 over a (gamma, lambda) grid on this dataset (pipeline.Setup.sweep_vs2)."""
    dg, dl = gamma_lambda_grid(s)
    gammas, lams = list(gammas or dg), list(lams or dl)
    cols = [f"lambda={v:g}" for v in lams]
    res = _result("sweep-gamma-lambda", s, cols, "Figs. 3/5: ViT-B/32; optimum on CIFAR-100 at gamma 1.5, lambda 2.1")
    sae = _profile_sae(s, sae, progress)
    grid = s.sweep_vs2(sae, gammas, lams)
    base = _accuracy(s, s.test.cls)
    for g, row in zip(gammas, grid.tolist()):
        res.rows.append(TableRow(f"gamma={g:g}", dict(zip(cols, row))))
    i, j = divmod(int(grid.argmax()), len(lams))
    lo, hi = paper.SENSITIVITY_BAND
    beat = (grid[[k for k, g in enumerate(gammas) if g != 1.0]] > base).float().mean().item()
    res.notes += [f"zero-shot {base:.2f}; best {grid.max():.2f} at gamma {gammas[i]:g}, lambda {lams[j]:g} "
                  f"(lambda*gamma = {gammas[i] * lams[j]:.2f}; the paper's good band is [{lo:g}, {hi:g}])",
                  f"{100 * beat:.0f}% of the grid with gamma > 1 beats zero-shot (the paper: all of its grid; "
                  "gamma = 1 is the identity)",
                  "the paper gives these grids only as figures: no numbers to print beside ours"]
    res.matrices.append(Matrix("gain over zero-shot (points)", [f"g={g:g}" for g in gammas], [f"l={v:g}" for v in lams],
                               (grid - base).tolist()))
    return res


def sweep_neighbours(s: Setup, counts=paper.NEIGHBOUR_COUNTS, progress: bool = False,
                     sae: TopKSAE | None = None, positives: str = "query") -> TableResult:
    """Fig. 7: VS2++ (pseudo-labels and oracle) top-1 / top-5 with N retrieved neighbours."""
    key, ps = _paper_key(s, ("cifar100", "ViT-B-16"))
    cols = ["pseudo top-1", "pseudo top-5", "oracle top-1", "oracle top-5"]
    res = _result("sweep-neighbours", s, cols, ps + "; Fig. 7 is ViT-B/16, numbers only at N = 50 (Table 1a)")
    counts = sorted({min(n, len(s.train.labels)) for n in counts})
    sae = _profile_sae(s, sae, progress)
    x = s.test.cls.to(s.clip.device)
    dirs = steer.bank_directions(sae, s.train.cls.to(s.clip.device))
    nn_all = neighbour_indices(s, max(counts))                 # best first: the first n are the n nearest
    labels = {kind: vs2pp_labels(s, kind) for kind in ("pseudo", "oracle")}
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    for n in counts:
        nn_idx = nn_all[:, :n]
        ours = {}
        for kind, mask in _masks(labels, nn_idx, positives).items():
            steered = steer.vs2pp_from_bank(x, dirs, nn_idx, mask, g, lam)
            ours[f"{kind} top-1"], ours[f"{kind} top-5"] = _accuracy(s, steered), _accuracy(s, steered, k=5)
        pv = {} if n != 50 else {f"{k} top-1": paper.PAPER[f"VS2++ ({k})"][key] for k in ("pseudo", "oracle")}
        res.rows.append(TableRow(f"N={n}", ours, pv))
    res.notes += [f"CLIP-embedding retrieval from the train split (the paper: DINOv2); {_positives_note(positives)}",
                  "the paper: CIFAR-100 and Tiny-ImageNet rise with N, diminishing beyond 50; CUB flat"]
    return res


def depth_configs(n: int) -> list[tuple[int, ...]]:
    """Table 7's configurations for a tower of n layers: the last, the last two, the last three."""
    return [tuple(range(n - m, n + 1)) for m in range(3) if n - m >= 1]


def depth(s: Setup, progress: bool = False, sae: TopKSAE | None = None) -> TableResult:
    """Table 7 (steering at the last 1, 2, 3 layers, one SAE per layer) and SAE^A_REC (every layer reconstructed)."""
    key, ps = _paper_key(s, ("cifar100", "ViT-B-16"))
    col = "top-1"
    n = depth_mod.n_layers(s.clip)
    over = ({"expansion": paper.TABLE_7_SETTING["expansion"], "k": paper.TABLE_7_SETTING["k"]}
            if s.profile.real else {})
    res = _result("depth", s, [col], ps + "; Table 7 is CIFAR-100 ViT-B/16, 4x, k = 128", layers=n)
    # Table 7's numbers are ViT-B/16 CIFAR-100: beside a real run of another backbone or dataset they would compare
    # two settings, so there only the matching Table 1a column (zero-shot, SAE^A_REC) is printed
    t7 = key == (paper.TABLE_7_SETTING["dataset"], paper.TABLE_7_SETTING["model"])
    if not t7:
        res.notes.append(f"Table 7 is CIFAR-100 ViT-B/16: no Table 7 number matches this run ({key[0]}, {key[1]}); "
                         "for them run --table depth --dataset cifar100 --model ViT-B-16-quickgelu")
    batch = s.profile.data.image_batch
    every_layer = s.profile.tables.depth_every_layer
    wanted = list(range(1, n + 1)) if every_layer else sorted({v for c in depth_configs(n) for v in c})
    feats = depth_mod.layer_features(s.clip, s.train_set, wanted, batch, progress=progress)
    # the last layer's tokens are the set-up's train tokens: a given profile SAE of the same shape serves there
    reuse = sae if _is_config(sae, over.get("expansion", s.profile.sae.expansion),
                              over.get("k", s.profile.k_for(s.clip.name))) else None
    saes = {layer: reuse if layer == n and reuse is not None else _train_on(s, feats[layer], progress, **over)
            for layer in wanted}
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    pv = lambda m: _table_1a(m, key, col)                                             # noqa: E731
    res.rows.append(TableRow("CLIP zero-shot", {col: _accuracy(s, s.test.cls)}, pv("CLIP zero-shot")))
    for layers in depth_configs(n):
        edits = {v: steer.vs2_edit(saes[v], g, lam) for v in layers}
        acc = _accuracy(s, depth_mod.edited_features(s.clip, s.test_set, edits, batch))
        paper_layers = tuple(12 - (n - v) for v in layers)          # ours relative to the last = ViT-B's names
        res.rows.append(TableRow(f"VS2 at layer{'s' * (len(layers) > 1)} {'+'.join(map(str, layers))}", {col: acc},
                                 {col: paper.TABLE_7.get(paper_layers) if t7 else None},
                                 f"blocks {', '.join(str(depth_mod.block_index(v)) for v in layers)} (0-indexed); "
                                 f"paper: layers {'+'.join(map(str, paper_layers))}"))
    if every_layer:
        every = {v: steer.reconstruction_edit(saes[v]) for v in range(1, n + 1)}
        a_rec = depth_mod.edited_features(s.clip, s.test_set, every, batch)
        res.rows.append(TableRow("SAE^A_REC", {col: _accuracy(s, a_rec)},
                                 pv("SAE^A_REC"),
                                 f"all {n} layers replaced by their SAE reconstruction"))
    else:
        res.notes.append(f"SAE^A_REC left out: it needs an SAE for each of the {n} layers and profile "
                         f"{s.profile.name} trains only the {len(wanted)} steered ones (depth_every_layer=False, "
                         "to fit its time budget); --profile full runs it")
    res.notes += [f"one SAE per layer on that layer's train CLS tokens; gamma {g}, lambda {lam} at every steered layer",
                  "layers are 1-indexed like the paper (layer n = the last block); the forward pass continues from "
                  "each steered token (paper App. E)"]
    return res


def vit_l14_model(profile: Profile) -> tuple[str | None, str | None]:
    """Table 9's backbone (ViT-L/14, OpenAI weights) for real profiles; offline profiles keep their own small model
    (None, "": the profile's choice)."""
    st = paper.TABLE_9_SETTING
    return (st["model"], st["pretrained"]) if profile.real else (None, "")


def vit_l14(s: Setup, progress: bool = False) -> TableResult:
    """Table 9: CLIP zero-shot and VS2 with a 10x wide, k = 128 SAE on the final block's CLS token."""
    st = paper.TABLE_9_SETTING
    ds = s.dataset if s.dataset in paper.TABLE_9 else "cifar100"
    n, d = depth_mod.n_layers(s.clip), s.test.cls.shape[1]
    res = _result("vit-l14", s, ["top-1"], f"{ds}, ViT-L/14 openai, layer 23 (0-indexed), 10x, k = 128"
                  + ("" if s.dataset in paper.TABLE_9 and s.real else " (not this run's setting)"), block=n - 1)
    # offline: the profile's k (Table 9's k = 128 would be a fifth of a 10 x 64 toy dictionary)
    k = st["k"] if s.profile.real else s.profile.k_for(s.clip.name)
    sae = s.train_sae(progress=progress, expansion=st["expansion"], k=k)[0]
    zs, vs2 = paper.TABLE_9[ds]
    res.rows.append(TableRow("CLIP zero-shot", {"top-1": _accuracy(s, s.test.cls)}, {"top-1": zs}))
    g, lam = s.profile.steer.gamma, s.profile.steer.lam
    res.rows.append(TableRow("VS2", {"top-1": _accuracy(s, steer.vs2(s.test.cls, sae, g, lam))},
                             {"top-1": vs2}, f"SAE {sae.n_latents} latents ({sae.n_latents // d}x), k {sae.k}"))
    res.notes += [f"steered: the final block's CLS token (0-indexed block {n - 1} of {n}; ViT-L/14 has 24, so 23)",
                  "the real run: python -m vs2mini reproduce --table vit-l14 --profile full --dataset cifar100 "
                  "(downloads openai ViT-L-14 weights once; wants a GPU)"]
    return res


PASS_TRADEOFF_W_AUX = (0.1, 0.5, 0.8, 1.0, 2.0)


def pass_tradeoff(setup: Setup, w_aux: tuple[float, ...] = PASS_TRADEOFF_W_AUX,
                  variants: tuple[str, ...] = ("eq7", "ratio"), gamma: float | None = None, lam: float | None = None,
                  progress: bool = False, saes: Mapping[float, tuple[TopKSAE, dict | None]] | None = None
                  ) -> list[dict]:
    """Reconstruction vs class alignment as w_aux grows, for each PASS variant (the shape of paper v3 Table 12).
    One PASS SAE per (variant, w_aux), trained like the table's (true train labels, the profile's budget); each row:
    test FVU, held-out FVU, class alignment = the within-class fraction of test code variance (lower: codes closer
    to their class mean), mean code norm (a collapse shows as codes shrinking to 0) and VS2 top-1 with that SAE.
    w_aux = 0 (no PASS) is the first row of each variant for reference: the plain SAE, trained once for all variants
    (the variant only shapes the PASS term). `saes`: {w_aux: (SAE, history)} already trained on this set-up with the
    profile's PASS variant (w_aux 0: the plain SAE), as notebook 6 trains them: reused, not trained again."""
    p = setup.profile
    gamma = p.steer.gamma if gamma is None else gamma
    lam = p.steer.lam if lam is None else lam
    x = setup.test.cls.to(setup.clip.device)
    y = setup.test.labels.to(setup.clip.device)
    ready = {(p.pass_.variant, float(w)): m for w, m in (saes or {}).items()}
    out = []
    for variant in variants:
        for w in (0.0,) + tuple(w_aux):
            key = (p.pass_.variant, 0.0) if w == 0 else (variant, float(w))     # one plain SAE for all variants
            if key not in ready:
                ready[key] = setup.train_sae(labels=setup.train.labels if w > 0 else None, w_aux=w,
                                             pass_variant=variant, progress=progress)
            sae, hist = ready[key]
            vals, idx = sae.encode_sparse(x)
            out.append({"variant": variant, "w_aux": w, "test_fvu": sae.fvu(x),
                        "heldout_fvu": train.summary(hist)["heldout_fvu"] if hist else None,
                        "within_class_fraction": pass_loss(vals, idx, y, sae.n_latents, variant="ratio").item(),
                        "code_norm": vals.norm(dim=1).mean().item(),
                        "vs2_top1": setup.accuracy(steer.vs2(x, sae, gamma, lam))})
    return out
