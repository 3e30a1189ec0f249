"""Every experiment of the paper beyond the main table, one small function per table, on a shared `Setup`.

    res = experiments.run_table("sweep-width-k", "smoke")       # or: python -m vs2mini reproduce --table sweep-width-k
    print(res.table())                                          # ours beside the paper's numbers

Each function calls the package's own pieces (steer, retrieval, depth, prototype, reproduce's VS2++ evaluation)
and returns a `TableResult` (text table, JSON). The paper's numbers come from `vs2mini.paper`. Offline profiles run
small grids in seconds; real profiles run the paper's grids. Where the paper is silent the function says what it
chose (in `notes`).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch

from . import depth as depth_mod
from . import metrics, paper, prototype, retrieval, steer
from .clip import zeroshot_head
from .data import DATASETS
from .features import cls_to_logits, embedding_logits
from .pipeline import Setup, load_setup
from .profiles import Profile, get_profile
from .sae import TopKSAE
from .reproduce import bank_directions, general_gate_data, neighbour_indices, vs2pp_eval, vs2pp_labels


# ------------------------------------------------------------------------------------------------ result object
@dataclass
class TableRow:
    label: str
    ours: dict[str, float | None]                     # column -> our value
    paper: dict[str, float | None] = field(default_factory=dict)   # column -> the paper's value (its setting)
    note: str = ""


@dataclass
class Matrix:
    """A labelled square or rectangular grid (Table 16's cosines, a sweep's grid)."""
    title: str
    row_labels: list[str]
    col_labels: list[str]
    values: list[list[float]]


@dataclass
class TableResult:
    name: str                   # CLI name, e.g. "sweep-width-k"
    source: str                 # the paper's table / figure
    setting: str                # what this run used
    paper_setting: str          # the setting the paper's numbers belong to
    real: bool
    columns: list[str]
    rows: list[TableRow] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    banner: str = ""

    @property
    def warning(self) -> str | None:
        return None if self.real else (self.banner or "TOY MODEL: not a real result, not the paper's numbers")

    def table(self) -> str:
        """Text table: each column as `ours` and `paper`, the toy-model warning once at the top."""
        out = [f"vs2mini reproduce --table {self.name}: {self.source}", f"this run: {self.setting}",
               f"paper:    {self.paper_setting}"]
        if self.warning:
            out.append(f"*** {self.warning} ***")
        width = max([len(r.label) for r in self.rows] + [12])
        cw = {c: max(8, len(c)) for c in self.columns}
        has_paper = {c: any(r.paper.get(c) is not None for r in self.rows) for c in self.columns}
        head = f"{'':<{width}} " + " ".join(f"{c:>{cw[c]}}" + (f" {'paper':>7}" if has_paper[c] else "")
                                           for c in self.columns)
        out += [head, "-" * len(head)]
        fmt = lambda v, w: f"{v:{w}.2f}" if v is not None else f"{'-':>{w}}"   # noqa: E731
        for r in self.rows:
            cells = " ".join(fmt(r.ours.get(c), cw[c]) + (f" {fmt(r.paper.get(c), 7)}" if has_paper[c] else "")
                             for c in self.columns)
            out.append(f"{r.label:<{width}} {cells}" + (f"  {r.note}" if r.note else ""))
        for m in self.matrices:
            lw = max(len(x) for x in m.row_labels)
            mw = max([9] + [len(c) + 1 for c in m.col_labels])
            out += ["", m.title, " " * lw + "".join(f"{c:>{mw}}" for c in m.col_labels)]
            out += [f"{lab:<{lw}}" + "".join(f"{v:{mw}.3f}" for v in vals) for lab, vals in zip(m.row_labels, m.values)]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {**asdict(self), "warning": self.warning}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# ------------------------------------------------------------------------------------------------ shared helpers
def _accuracy(s: Setup, cls: torch.Tensor, head: torch.Tensor | None = None, k: int = 1) -> float:
    """Top-k (%) of test CLS tokens (N, d) under `head` (default: the set-up's zero-shot head)."""
    logits = cls_to_logits(s.clip, cls, s.head if head is None else head).cpu()
    if k == 1:
        return metrics.top1(logits, s.test.labels)
    hits = (logits.topk(min(k, logits.shape[1]), dim=-1).indices == s.test.labels[:, None]).any(-1)
    return 100.0 * hits.float().mean().item()


def _paper_key(s: Setup, default: tuple[str, str] = ("cifar100", "ViT-B-32")) -> tuple[tuple[str, str], str]:
    """The paper's (dataset, backbone) this run corresponds to, or `default` for other runs, with a description."""
    key = (s.dataset, paper.paper_backbone(s.clip.name))
    if s.real and s.clip.pretrained == "openai" and key in paper.PAPER_COLUMNS:
        return key, f"{key[0]}, {key[1]} (this run's setting)"
    return default, f"{default[0]}, {default[1]} (the paper's setting; not this run's)"


def _table_1a(method: str, key: tuple[str, str], col: str) -> dict[str, float]:
    """{col: Table 1a's number for `method` at the paper's (dataset, backbone) `key`}."""
    return {col: paper.TABLE_1A[method][paper.PAPER_COLUMNS.index(key)]}


def _setting(s: Setup, **extra) -> str:
    more = "".join(f", {k} {v}" for k, v in extra.items())
    return (f"{s.dataset}, {s.clip.name} ({s.clip.pretrained or 'random weights'}), profile {s.profile.name}, "
            f"{len(s.train.labels)} train / {len(s.test.labels)} test{more}")


def _result(name: str, s: Setup, columns, paper_setting: str, **extra) -> TableResult:
    return TableResult(name, TABLES[name].source, _setting(s, **extra), paper_setting, s.real, list(columns),
                       banner=s.banner)


def _train_on(s: Setup, X: torch.Tensor, progress: bool = False, **overrides):
    """The profile's SAE (Setup.train_sae, the one training path) on other activations X: (N, d)."""
    other = replace(s, train=replace(s.train, cls=X))
    return other.train_sae(progress=progress, **overrides)[0]


def _profile_sae(s: Setup, sae: TopKSAE | None, progress: bool) -> TopKSAE:
    """The profile's SAE on the train CLS tokens: `sae` when the caller already trained it (run_all, notebooks)."""
    return sae if sae is not None else s.train_sae(progress=progress)[0]


def _is_config(sae: TopKSAE | None, expansion: int, k: int) -> bool:
    """Whether `sae` has `expansion` x d latents and k active ones (so a table can reuse it)."""
    return sae is not None and (sae.n_latents, sae.k) == (expansion * sae.d_in, k)


def _masks(labels: dict[str, tuple[torch.Tensor, torch.Tensor]], nn_idx: torch.Tensor,
           rule: str = "query") -> dict[str, torch.Tensor]:
    """S+ masks (Q, M) per label source, from `{kind: reproduce.vs2pp_labels(s, kind)}` (computed once by the
    caller: the pseudo-labels are a forward pass over the whole bank), as reproduce's VS2++ rows build them."""
    return {kind: retrieval.positive_mask(bank[nn_idx], query, rule) for kind, (bank, query) in labels.items()}


# ------------------------------------------------------------------------------------------------ the tables
def prompts(s: Setup, progress: bool = False, sae: TopKSAE | None = None) -> TableResult:
    """Table 1b: prompt ensembling (Ens, the CLIP paper's 18 CIFAR templates) alone and with VS2."""
    key, ps = _paper_key(s)
    col = "top-1"
    res = _result("prompts", s, [col], ps + "; Table 1b is ViT-B/32 only", templates=s.profile.templates)
    x = s.test.cls.to(s.clip.device)
    ens = zeroshot_head(s.clip, s.classnames, "cifar18")
    sae = _profile_sae(s, sae, progress)
    vs2_x = steer.vs2(x, sae, s.profile.gamma, s.profile.lam)
    ours = {"CLIP zero-shot": _accuracy(s, x), "Ens": _accuracy(s, x, ens), "VS2": _accuracy(s, vs2_x),
            "VS2 + Ens": _accuracy(s, vs2_x, ens)}
    j = paper.TABLE_1B_COLUMNS.index(key[0])
    for label, values in paper.TABLE_1B.items():
        res.rows.append(TableRow(label, {col: ours.get(label)}, {col: values[j]},
                                 "" if label in ours else "not implemented in vs2mini"))
    res.notes += ["Ens = the 18 CIFAR templates of the CLIP paper (the paper does not state its template set); "
                  "zero-shot and VS2 use the profile's templates",
                  f"VS2 + Ens steers with the same SAE (gamma {s.profile.gamma}, lambda {s.profile.lam}) and "
                  "classifies with the ensembled head"]
    return res


def width_k_grid(s: Setup) -> list[tuple[int, int]]:
    """Table 8's (expansion, k) configurations for real profiles. Offline three (the profile's SAE, half its width,
    half its k): one step along each axis keeps the table to seconds."""
    if s.profile.real:
        return list(paper.TABLE_8)
    e, k = s.profile.expansion, s.profile.k_for(s.clip.name)
    return [(max(1, e // 2), k), (e, max(1, k // 2)), (e, k)]


def sweep_width_k(s: Setup, configs: list[tuple[int, int]] | None = None, progress: bool = False,
                  sae: TopKSAE | None = None) -> TableResult:
    """Table 8 (VS2 top-1 / top-5 by SAE width x k) and Table 16 (mean cosine of the VS2 vectors across configs)."""
    configs = configs or width_k_grid(s)
    _, ps = _paper_key(s)
    res = _result("sweep-width-k", s, ["top-1", "top-5"], ps + "; Tables 8 and 16 are ViT-B/32 CIFAR-100")
    x = s.test.cls.to(s.clip.device)
    g, lam = s.profile.gamma, s.profile.lam
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
                     sae: TopKSAE | None = None) -> TableResult:
    """Fig. 7: VS2++ (pseudo-labels and oracle) top-1 / top-5 with N retrieved neighbours."""
    key, ps = _paper_key(s, ("cifar100", "ViT-B-16"))
    cols = ["pseudo top-1", "pseudo top-5", "oracle top-1", "oracle top-5"]
    res = _result("sweep-neighbours", s, cols, ps + "; Fig. 7 is ViT-B/16, numbers only at N = 50 (Table 1a)")
    counts = sorted({min(n, len(s.train.labels)) for n in counts})
    sae = _profile_sae(s, sae, progress)
    dirs = bank_directions(sae, s.train.cls.to(s.clip.device))
    nn_all = neighbour_indices(s, max(counts))                 # best first: the first n are the n nearest
    labels = {kind: vs2pp_labels(s, kind) for kind in ("pseudo", "oracle")}
    g, lam = s.profile.gamma, s.profile.lam
    for n in counts:
        nn_idx = nn_all[:, :n]
        ours = {}
        for kind, mask in _masks(labels, nn_idx).items():
            steered = vs2pp_eval(s, sae, mask, nn_idx, g, lam, bank_dirs=dirs)
            ours[f"{kind} top-1"], ours[f"{kind} top-5"] = _accuracy(s, steered), _accuracy(s, steered, k=5)
        pv = {} if n != 50 else {f"{k} top-1": paper.PAPER[f"VS2++ ({k})"][key] for k in ("pseudo", "oracle")}
        res.rows.append(TableRow(f"N={n}", ours, pv))
    res.notes += ["CLIP-embedding retrieval from the train split (the paper: DINOv2), positives by eq. 4",
                  "the paper: CIFAR-100 and Tiny-ImageNet rise with N, diminishing beyond 50; CUB flat"]
    return res


def weighted_rag(s: Setup, nn_sims: torch.Tensor, nn_idx: torch.Tensor, alpha: float, k: int) -> torch.Tensor:
    """App. D weighted RAG: E = alpha q + (1 - alpha) sum_j w_j r_j, w_j = s_j / sum_i s_i over the k nearest.
    q, r: CLIP image embeddings (normalised); nn_sims, nn_idx: (Q, >= k) from knn. Returns E: (Q, D), to be
    classified with the zero-shot head. Similarities are clamped at 0 (the paper does not say what negative
    similarities do)."""
    q = torch.nn.functional.normalize(s.test.emb.float(), dim=-1)
    r = torch.nn.functional.normalize(s.train.emb.float(), dim=-1)[nn_idx[:, :k]]           # (Q, k, D)
    w = nn_sims[:, :k].cpu().clamp_min(0)
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    return alpha * q + (1 - alpha) * (w[..., None] * r).sum(1)


def oracle_prototypes(s: Setup, sae, n_images: int = paper.ORACLE_PROTOTYPE_IMAGES) -> torch.Tensor:
    """App. L oracle prototype steering: per class, the mean SAE code of the `n_images` train images of that class
    with the highest zero-shot probability of it; each test image is steered with its TRUE class's prototype.
    Returns steered test CLS tokens (N, d). The paper does not say which split or which probability; we use the
    train split and the probability of the true class."""
    probs = s.logits(s.train.cls).softmax(-1)
    y = s.train.labels
    own = probs[torch.arange(len(y)), y]
    picks = torch.cat([(y == c).nonzero().flatten()[own[y == c].argsort(descending=True)[:n_images]]
                       for c in range(len(s.classnames))])
    protos = prototype.prototype_directions(sae, s.train.cls[picks].to(sae.device), y[picks].to(sae.device),
                                            len(s.classnames))
    v = (s.profile.gamma - 1.0) * protos[s.test.labels.to(protos.device)]
    return steer.apply_steering(s.test.cls.to(protos.device), v, s.profile.lam)


def rag_grid(s: Setup) -> tuple[list[float], list[int]]:
    """Fig. 6's alpha and k values (real profiles) or a small grid offline; k capped by the train split."""
    ks = paper.RAG_KS if s.profile.real else (5, 10, 20)
    return list(paper.RAG_ALPHAS), sorted({min(k, len(s.train.labels)) for k in ks})


def baselines(s: Setup, progress: bool = False, sae: TopKSAE | None = None) -> TableResult:
    """App. D and L: CLIP Steering, weighted RAG (alpha x k sweep, Fig. 6), oracle prototype steering, beside VS2++."""
    key, ps = _paper_key(s)
    col = "top-1"
    res = _result("baselines", s, [col], ps)
    g, lam = s.profile.gamma, s.profile.lam
    n = min(s.profile.n_neighbors, len(s.train.labels))
    sae = _profile_sae(s, sae, progress)
    nn_idx = neighbour_indices(s, n)
    masks = _masks({kind: vs2pp_labels(s, kind) for kind in ("pseudo", "oracle")}, nn_idx)
    dirs = bank_directions(sae, s.train.cls.to(s.clip.device))
    pv = lambda m: _table_1a(m, key, col)                                             # noqa: E731
    res.rows.append(TableRow("CLIP zero-shot", {col: _accuracy(s, s.test.cls)}, pv("CLIP zero-shot")))
    for kind in ("oracle", "pseudo"):
        # CLIP Steering = VS2++'s rule with the neighbours' raw CLS tokens instead of their SAE directions
        clip_st = vs2pp_eval(s, sae, masks[kind], nn_idx, g, lam, bank_dirs=s.train.cls.to(s.clip.device))
        res.rows.append(TableRow(f"CLIP Steering ({kind})", {col: _accuracy(s, clip_st)},
                                 pv(f"CLIP Steering ({kind})")))
        vs2pp = vs2pp_eval(s, sae, masks[kind], nn_idx, g, lam, bank_dirs=dirs)
        res.rows.append(TableRow(f"VS2++ ({kind})", {col: _accuracy(s, vs2pp)}, pv(f"VS2++ ({kind})")))
    alphas, ks = rag_grid(s)
    sims, idx = retrieval.knn(s.test.emb.to(s.clip.device), s.train.emb.to(s.clip.device), max(ks))
    rag = lambda a, k: metrics.top1(embedding_logits(weighted_rag(s, sims, idx.cpu(), a, k), s.head.cpu()),  # noqa
                                    s.test.labels)
    grid = [[rag(a, k) for k in ks] for a in alphas]
    best = max((v, a, k) for a, row in zip(alphas, grid) for k, v in zip(ks, row))
    res.rows.append(TableRow("Weighted RAG", {col: best[0]}, pv("Weighted RAG"),
                             f"best: alpha {best[1]:g}, k {best[2]}"))
    res.matrices.append(Matrix("Fig. 6: weighted RAG top-1 by alpha (rows) and k (columns)",
                               [f"a={a:g}" for a in alphas], [f"k={k}" for k in ks], grid))
    proto = oracle_prototypes(s, sae)
    res.rows.append(TableRow("Oracle prototypes", {col: _accuracy(s, proto)},
                             {col: paper.ORACLE_PROTOTYPES.get(key[0])}, "true class's prototype, App. L"))
    res.notes += [f"N = {n} neighbours by CLIP image embedding (the paper: DINOv2); positives by eq. 4",
                  "CLIP Steering: v = mean of S+ CLS tokens - mean of S- CLS tokens, applied like VS2++ "
                  f"((gamma-1) lambda = {(g - 1) * lam:.2f}, norm kept); the paper does not state its space or scale",
                  "Weighted RAG classifies the mixed CLIP embedding E with the zero-shot head; its paper number is "
                  "listed under oracle labels though it uses none"]
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
    batch = s.profile.image_batch
    feats = depth_mod.layer_features(s.clip, s.train_set, range(1, n + 1), batch, progress=progress)
    # the last layer's tokens are the set-up's train tokens: a given profile SAE of the same shape serves there
    reuse = sae if _is_config(sae, over.get("expansion", s.profile.expansion),
                              over.get("k", s.profile.k_for(s.clip.name))) else None
    saes = {layer: reuse if layer == n and reuse is not None else _train_on(s, feats[layer], progress, **over)
            for layer in range(1, n + 1)}
    g, lam = s.profile.gamma, s.profile.lam
    pv = lambda m: _table_1a(m, key, col)                                             # noqa: E731
    res.rows.append(TableRow("CLIP zero-shot", {col: _accuracy(s, s.test.cls)}, pv("CLIP zero-shot")))
    for layers in depth_configs(n):
        edits = {v: depth_mod.vs2_edit(saes[v], g, lam) for v in layers}
        acc = _accuracy(s, depth_mod.edited_features(s.clip, s.test_set, edits, batch))
        paper_layers = tuple(12 - (n - v) for v in layers)          # ours relative to the last = ViT-B's names
        res.rows.append(TableRow(f"VS2 at layer{'s' * (len(layers) > 1)} {'+'.join(map(str, layers))}", {col: acc},
                                 {col: paper.TABLE_7.get(paper_layers)},
                                 f"blocks {', '.join(str(depth_mod.block_index(v)) for v in layers)} (0-indexed); "
                                 f"paper: layers {'+'.join(map(str, paper_layers))}"))
    every = {v: depth_mod.reconstruction_edit(saes[v]) for v in range(1, n + 1)}
    a_rec = depth_mod.edited_features(s.clip, s.test_set, every, batch)
    res.rows.append(TableRow("SAE^A_REC", {col: _accuracy(s, a_rec)},
                             pv("SAE^A_REC"),
                             f"all {n} layers replaced by their SAE reconstruction"))
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
    res.rows.append(TableRow("VS2", {"top-1": _accuracy(s, steer.vs2(s.test.cls, sae, s.profile.gamma, s.profile.lam))},
                             {"top-1": vs2}, f"SAE {sae.n_latents} latents ({sae.n_latents // d}x), k {sae.k}"))
    res.notes += [f"steered: the final block's CLS token (0-indexed block {n - 1} of {n}; ViT-L/14 has 24, so 23)",
                  "the real run: python -m vs2mini reproduce --table vit-l14 --profile full --dataset cifar100 "
                  "(downloads openai ViT-L-14 weights once; wants a GPU)"]
    return res


def ood_gate_datasets(profile: Profile) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(datasets whose train splits train the generalized SAE, those whose train FVU sets tau, evaluated datasets).
    Real profiles: the paper's (the three main train splits; CIFAR-100 + Tiny-ImageNet for tau; all nine).
    Offline: the toy base domain trains the SAE and sets tau; the base and the shifted domain are evaluated."""
    if profile.real:
        return paper.MAIN_DATASETS, ("cifar100", "tinyimagenet"), paper.TABLE_3_COLUMNS
    toy = tuple(d for d in ("toy", "toy-shifted") if d in DATASETS) or ("synthetic",)
    return toy[:1], toy[:1], toy


def ood_gate(profile: str | Profile | None = None, dataset: str | None = None, *, qs=paper.TABLE_3_GATE_Q,
             model: str | None = None, pretrained: str | None = "", device: str | None = None,
             progress: bool = False, setups: dict[str, Setup] | None = None,
             saes: dict[str, TopKSAE] | None = None) -> TableResult:
    """Table 3: VS2 with a generalized SAE (trained on a union of train splits) under distribution shift, ungated and
    behind the FVU gate (tau = the q-quantile of per-sample FVU on unlabeled train tokens), with the coverage, beside
    the target-domain SAE (each dataset's own train split). `dataset` evaluates that dataset only.
    `setups` / `saes`: already loaded set-ups and trained target-domain SAEs by dataset, reused."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    train_on, tau_on, evaluate = ood_gate_datasets(p)
    evaluate = (dataset,) if dataset else evaluate
    setups = dict(setups or {})
    for ds in dict.fromkeys(train_on + tau_on + evaluate):        # each dataset loaded once, in order
        if ds not in setups:
            setups[ds] = load_setup(p, ds, model=model, pretrained=pretrained, device=device, progress=progress)
    first = setups[evaluate[0]]
    g, lam = p.gamma, p.lam
    saes = dict(saes or {})
    for ds in evaluate:
        if ds not in saes:
            saes[ds] = setups[ds].train_sae(progress=progress)[0]     # the target-domain SAE: its own train split
    # The paper's gate data (the same function the main table's gate rows use). One training domain that is also
    # evaluated: its target-domain SAE is that SAE (same tokens, same seed), so it is reused.
    reuse = saes[train_on[0]] if len(train_on) == 1 and train_on[0] in saes else None
    gd, _ = general_gate_data(first, reuse, train_datasets=train_on, tau_datasets=tau_on,
                              train_features=lambda name: setups[name].train, progress=progress)
    gen, mu = gd.sae, gd.mu
    tau_fvu = steer.per_sample_fvu(gd.x_tau, gen, mu)
    taus = {q: steer.fvu_threshold(tau_fvu, q) for q in qs}
    cols = list(evaluate)
    res = _result("ood-gate", first, cols, "Table 3: ViT-B/32, generalized SAE on the CIFAR-100 + CUB + Tiny-ImageNet "
                  "train union, tau from the CIFAR-100 + Tiny-ImageNet train FVU")
    res.setting = (f"{', '.join(evaluate)}; {first.clip.name} ({first.clip.pretrained or 'random weights'}), "
                   f"profile {p.name}; generalized SAE on the train splits of {', '.join(train_on)}; "
                   f"tau from {', '.join(tau_on)}")
    ours: dict[str, dict[str, float]] = defaultdict(dict)            # row -> dataset -> value
    for ds in evaluate:
        s = setups[ds]
        x = s.test.cls.to(s.clip.device)
        target = saes[ds]
        vs2_gen, fvu = steer.vs2(x, gen, g, lam), steer.per_sample_fvu(x, gen, mu)
        ours["CLIP zero-shot"][ds] = _accuracy(s, x)
        ours["VS2 (target-domain SAE)"][ds] = _accuracy(s, steer.vs2(x, target, g, lam))
        ours["VS2 (generalized SAE)"][ds] = _accuracy(s, vs2_gen)
        ours["test FVU (generalized SAE, median)"][ds] = fvu.median().item()
        for q in qs:
            gated, mask = steer.gate(x, vs2_gen, fvu, taus[q])
            ours[f"VS2 + FVU gate (q={q:g})"][ds] = _accuracy(s, gated)
            ours[f"  coverage % (q={q:g})"][ds] = 100.0 * mask.float().mean().item()
    for label, values in ours.items():
        res.rows.append(TableRow(label, values, _table_3(label, cols)))
    res.notes += ["tau by q: " + ", ".join(f"{q:g}: {t:.3f}" for q, t in taus.items()),
                  f"gamma {g}, lambda {lam}; the per-sample FVU uses the generalized SAE's training mean (paper §3.2)"]
    if not set(cols) & set(paper.TABLE_3_COLUMNS):
        rows = [label for label in ours if _table_3(label, paper.TABLE_3_COLUMNS)]
        res.matrices.append(Matrix("the paper's Table 3 (ViT-B/32; coverage in %)", rows, list(paper.TABLE_3_COLUMNS),
                                   [list(_table_3(r, paper.TABLE_3_COLUMNS).values()) for r in rows]))
    return res


def _table_3(label: str, cols) -> dict[str, float]:
    """The paper's Table 3 entries of a row label (accuracy rows, gate rows, coverage rows) for known columns."""
    j = {c: paper.TABLE_3_COLUMNS.index(c) for c in cols if c in paper.TABLE_3_COLUMNS}
    if label in paper.TABLE_3:
        return {c: paper.TABLE_3[label][i] for c, i in j.items()}
    for q, cells in paper.TABLE_3_GATE.items():
        if label == f"VS2 + FVU gate (q={q:g})":
            return {c: cells[i][0] for c, i in j.items()}
        if label == f"  coverage % (q={q:g})":
            return {c: cells[i][1] for c, i in j.items()}
    return {}


# ------------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Table:
    name: str
    source: str
    run: Callable[..., TableResult]
    help: str
    per_dataset: bool = True        # False: the table spans several datasets (run(profile, dataset, ...))
    shares_sae: bool = True         # run(setup, sae=...) accepts the profile's SAE instead of training it


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("prompts", "Table 1b (prompt ensembles, TTA)", prompts, "Ens (18 CIFAR templates) and VS2 + Ens"),
    Table("sweep-width-k", "Table 8 and Table 16 (App. F)", sweep_width_k,
          "SAE width x k: VS2 top-1/top-5 and the cosine of steering vectors across configs"),
    Table("sweep-gamma-lambda", "Figs. 3 and 5 (App. B)", sweep_gamma_lambda, "the (gamma, lambda) grid"),
    Table("sweep-neighbours", "Fig. 7 (App. J)", sweep_neighbours, "VS2++ with N in {10, 25, 50, 100}"),
    Table("baselines", "Table 1a RAG rows, App. D and App. L", baselines,
          "CLIP Steering, weighted RAG (alpha x k, Fig. 6), oracle prototypes, beside VS2++"),
    Table("depth", "Table 7 (App. E) and SAE^A_REC (Table 1a)", depth,
          "steering at the last 1-3 layers with one SAE per layer; every layer reconstructed"),
    Table("vit-l14", "Table 9 (App. H)", vit_l14, "ViT-L/14, layer 23, 10x width, k = 128", shares_sae=False),
    Table("ood-gate", "Table 3 (§4.3)", ood_gate, "generalized SAE under shift, FVU gate with q in "
          "{0.9, 0.95, 0.99, 0.995} and coverage, beside the target-domain SAE", per_dataset=False,
          shares_sae=False),
)}

# The resolution-shift grid (issue "When VS2 helps"; vs2mini/shift_table.py), the toy world only.
from .shift_table import shift_table as _shift_table  # noqa: E402
TABLES["shift"] = Table("shift", "Table 1a rows under a pretraining-to-evaluation shift (toy resolutions)",
                        _shift_table, "every row on the toy world at 32/16/12/8 px, gains with paired standard "
                        "errors, re-centring and the wrong-centroid case", per_dataset=False, shares_sae=False)


def run_table(name: str, profile: str | Profile | None = None, dataset: str | None = None, *, model: str | None = None,
              pretrained: str | None = "", device: str | None = None, progress: bool = False,
              setup: Setup | None = None, sae: TopKSAE | None = None) -> TableResult:
    """Run one table by its CLI name on one dataset (the profile's first by default). `setup` and the profile's
    `sae` are reused when given."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; choose one of {sorted(TABLES)}")
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    if not TABLES[name].per_dataset:
        return TABLES[name].run(p, dataset, model=model, pretrained=pretrained, device=device, progress=progress)
    if name == "vit-l14" and setup is None:
        m, pt = vit_l14_model(p)
        model, pretrained = model or m, pt if pretrained == "" else pretrained
    s = setup or load_setup(p, dataset, model=model, pretrained=pretrained, device=device, progress=progress)
    extra = {"sae": sae} if TABLES[name].shares_sae else {}
    return TABLES[name].run(s, progress=progress, **extra)


def run_all(profile: str | Profile | None = None, datasets: list[str] | None = None, *, model: str | None = None,
            pretrained: str | None = "", device: str | None = None, progress: bool = False):
    """Every table, in the registry's order. Per dataset (the profile's by default) one set-up and one profile SAE
    serve every table that uses them; the multi-dataset tables run once at the end, reusing both.
    Yields each `TableResult` as it finishes."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    kw = dict(model=model, pretrained=pretrained, device=device, progress=progress)
    setups, saes = {}, {}
    for ds in datasets or p.datasets:
        s = setups[ds] = load_setup(p, ds, **kw)
        saes[ds] = s.train_sae(progress=progress)[0]
        for name, t in TABLES.items():
            if not t.per_dataset:
                continue
            if name == "vit-l14" and p.real:   # its own backbone
                yield run_table(name, p, ds, **kw)
            else:
                yield run_table(name, setup=s, progress=progress, sae=saes[ds] if t.shares_sae else None)
    for name, t in TABLES.items():
        if not t.per_dataset:
            ds = datasets[0] if datasets and len(datasets) == 1 else None
            yield t.run(p, ds, setups=setups, saes=saes, **kw)
