"""The paper's table for one dataset and backbone (paper v3 Table 1a, Table 11, Table 3) in one call.

Rows: CLIP zero-shot, SAE reconstruction baselines, VS2, the FVU gate (the paper's generalized-SAE gate and the
in-domain variant), VS2++ (pseudo-label and oracle), PASS. Each row is a small function of a `Context` (which SAE,
which split, which labels) returning the steered test CLS tokens it is scored on; `run_reproduce` builds the context
and scores the rows in `ROWS`. SAE^A_REC (one SAE per layer) is not reproduced: vs2mini trains the final-layer SAE.
Documented choices where the paper is silent:
- gamma, lam: the CIFAR-100 B/32 optimum (1.5, 2.1) for every method (paper v3 App. B; per-dataset values not given).
- FVU gate, as the paper runs it (v3 §4.3): a generalized SAE trained on the union of the profile's datasets' train
  splits; tau = the q-quantile of per-sample FVU over an unlabelled train union (`Profile.gate_tau_datasets`,
  CIFAR-100 + Tiny-ImageNet in `full`), mu = the generalized SAE's training mean; q = 0.95. The in-domain row takes
  tau and mu from this dataset's own train split with the target-domain SAE.
- VS2++ retrieval: CLIP image embeddings by default (the paper used DINOv2; size not given), bank = train split.
- VS2++ oracle (the paper's reading is open, v3 §4.2 vs eq. 4): with the "query" rule, S+ = neighbours whose true
  label equals the query's true label, so the oracle sees the test label (a strict upper bound); with "majority",
  S+ = neighbours with the most frequent true label, which uses neighbour labels only.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Callable

import torch

from . import metrics, retrieval, steer, trainer
from .data import load_dataset, superclasses
from .features import Features, cached_features
from .paper import PAPER, PAPER_COLUMNS, PAPER_ROWS, TABLE_6_FVU, paper_backbone, paper_value  # noqa: F401
from .pipeline import Setup, load_setup
from .profiles import TOY_BANNER
from .sae import TopKSAE

# Paper v3 Table 6 (in vs2mini/paper.py): FVU of the dataset-specific SAEs by (dataset, backbone).
# The published setting a toy run's table quotes for orientation (see Result.table).
TOY_REFERENCE = ("cifar100", "ViT-B-32")
PAPER_FVU = {(ds, bb): v for ds, vals in TABLE_6_FVU.items() for bb, v in zip(("ViT-B-32", "ViT-B-16"), vals)}


def paper_fvu(dataset: str, model: str, pretrained: str | None) -> float | None:
    """The paper's Table 6 FVU for this dataset and backbone (OpenAI weights only), else None."""
    return PAPER_FVU.get((dataset, paper_backbone(model))) if pretrained == "openai" else None


@dataclass
class Row:
    method: str
    top1: float
    delta: float
    coverage: float | None = None     # fraction of test samples steered (FVU gate)
    paper: float | None = None
    note: str = ""
    se: float | None = None           # paired standard error of `delta` over test images (points)


@dataclass
class Result:
    dataset: str
    model: str
    pretrained: str | None
    profile: str
    real: bool
    retrieval: str
    settings: dict
    rows: list[Row] = field(default_factory=list)

    @property
    def warning(self) -> str | None:
        return None if self.real else TOY_BANNER

    def table(self) -> str:
        """A readable text table."""
        head = f"{'method':<31} {'top-1':>7} {'vs ZS':>7} {'+-se':>5} {'steered':>8} {'paper':>7}  note"
        lines = [f"vs2mini reproduce: {self.dataset}, {self.model} ({self.pretrained or 'random weights'}), "
                 f"profile {self.profile}, retrieval {self.retrieval}"]
        if self.warning:
            lines.append(f"*** {self.warning} ***")
        lines += [head, "-" * len(head)]
        # A run that is not one of the paper's settings (the toy world) gets the paper's CIFAR-100 ViT-B/32 number
        # beside each row, marked "*", so a reader sees what a real run shows; `Row.paper` stays None.
        ref = [] if self.real else [PAPER.get(r.method, {}).get(TOY_REFERENCE) for r in self.rows]
        for i, r in enumerate(self.rows):
            cov = f"{100 * r.coverage:7.1f}%" if r.coverage is not None else " " * 8
            pap = f"{r.paper:7.2f}" if r.paper is not None else "      -"
            if r.paper is None and ref and ref[i] is not None:
                pap = f"{ref[i]:6.2f}*"
            se = f"{r.se:5.2f}" if r.se is not None else "    -"
            lines.append(f"{r.method:<31} {r.top1:7.2f} {r.delta:+7.2f} {se} {cov} {pap}  {r.note}")
        lines.append("+-se: paired standard error of 'vs ZS' over test images (per-image correctness difference)")
        cen = self.settings.get("centroid")
        if cen:
            a = steer.centroid_alpha(self.settings["gamma"], self.settings["lam"])
            lines.append(f"centroid: ||mu|| {cen['mu_norm']:.3f}, mean ||x - mu|| {cen['deviation_norm']:.3f}, ratio "
                         f"{cen['ratio']:.3f} (mu = unlabelled train mean); VS2 at (gamma, lambda) removes "
                         f"{100 * a / (1 + a):.0f}% of b_pre (Prop. 3.1)")
        if any(v is not None for v in ref):
            lines.append("* the paper's number for CIFAR-100 with OpenAI ViT-B/32 (v3 Tables 1a and 11), what a real "
                         "run is compared with; not comparable with this run")
        for name, t in self.settings.get("sae_training", {}).items():
            pap = f", paper (Table 6) {t['paper_fvu']:.4f}" if t.get("paper_fvu") is not None else ""
            held = f"{t['heldout_fvu']:.4f}" if t.get("heldout_fvu") is not None else "-"
            lines.append(f"SAE {name}: {t['steps']} steps ({t['epochs']} epochs, selected epoch "
                         f"{t['selected_epoch']}), FVU train {t['train_fvu']:.4f} / held-out {held} / "
                         f"test {t['test_fvu']:.4f}{pap}")
        return "\n".join(lines)

    def to_frame(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows]).set_index("method")

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "warning": self.warning}, indent=2)


@torch.no_grad()
def pseudo_labels(setup: Setup) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP zero-shot predictions (no labels used): (train bank (B,), test queries (Q,))."""
    return setup.logits(setup.train.cls).argmax(-1), setup.logits(setup.test.cls).argmax(-1)  # as the ZS row


def vs2pp_labels(setup: Setup, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The labels VS2++ splits neighbours by: (train bank (B,), test queries (Q,)). "pseudo": CLIP zero-shot
    predictions (no labels used); "oracle": the true train and test labels."""
    if kind == "pseudo":
        return pseudo_labels(setup)
    if kind == "oracle":
        return setup.train.labels, setup.test.labels
    raise ValueError(f"unknown VS2++ label source {kind!r}; choose 'pseudo' or 'oracle'")


@torch.no_grad()
def neighbour_indices(setup: Setup, n: int, features: str = "clip", progress: bool = False) -> torch.Tensor:
    """(Q, n) indices into the train bank of each test image's n nearest train images (cosine, best first), by
    CLIP image embeddings or DINOv2 features."""
    dev = setup.clip.device
    if features == "clip":
        q_feat, bank_feat = setup.test.emb, setup.train.emb
    elif features == "dinov2":
        q_feat = retrieval.dinov2_features(setup.test_set, device=dev, progress=progress)
        bank_feat = retrieval.dinov2_features(setup.train_set, device=dev, progress=progress)
    else:
        raise ValueError(f"unknown retrieval features {features!r}; choose 'clip' or 'dinov2'")
    return retrieval.knn(q_feat.to(dev), bank_feat.to(dev), n)[1].cpu()


@torch.no_grad()
def bank_directions(sae, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """x: (N, d) bank CLS tokens -> their decoded SAE directions W_dec^T c (N, d), without b_pre."""
    out = torch.empty(x.shape[0], sae.d_in, device=sae.device)    # filled chunk by chunk: no torch.cat copy
    for s in range(0, x.shape[0], chunk):
        vals, idx = sae.encode_sparse(x[s:s + chunk])
        out[s:s + chunk] = sae.decode(vals, idx, bias=False)
    return out


@torch.no_grad()
def vs2pp_eval(setup: Setup, sae, pos_mask: torch.Tensor, nn_idx: torch.Tensor, gamma: float, lam: float,
               chunk: int = 1024, bank_dirs: torch.Tensor | None = None) -> torch.Tensor:
    """VS2++ over the whole test set; returns steered CLS tokens (N, d).
    pos_mask, nn_idx: (N, M) from retrieval; `bank_dirs` (from `bank_directions`) can be passed to reuse it
    (run_reproduce decodes the bank once for the pseudo and the oracle rows). One sparse product over the bank
    (`steer.vs2pp_from_bank`); `chunk` is kept for callers and no longer needed (nothing of size (N, M, d) is built)."""
    dev = setup.clip.device
    if bank_dirs is None:
        bank_dirs = bank_directions(sae, setup.train.cls.to(dev))
    return steer.vs2pp_from_bank(setup.test.cls.to(dev), bank_dirs, nn_idx, pos_mask, gamma, lam)


# ------------------------------------------------------------------------------------------------ the rows
@dataclass
class GateData:
    """The paper's gate (v3 §4.3): a generalized SAE, its training mean mu (d,) and the unlabelled CLS tokens
    x_tau (M, d) whose per-sample FVU quantile gives tau."""
    sae: TopKSAE
    mu: torch.Tensor
    x_tau: torch.Tensor
    train_datasets: tuple[str, ...]
    tau_datasets: tuple[str, ...]


@dataclass
class Steered:
    """One row's output: the test CLS tokens (N, d) it is scored on, its coverage and what to note."""
    method: str
    cls: torch.Tensor
    coverage: float | None = None
    note: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class Context:
    """Everything the rows read: the set-up (splits, labels, zero-shot head), the SAEs and the settings."""
    setup: Setup
    sae: TopKSAE                     # target-domain SAE (trained on this dataset's train split)
    pass_sae: TopKSAE                # PASS SAE (trained with this dataset's train labels)
    general: GateData | None = None  # generalized SAE for the paper's gate (None: gate rows skipped)
    gamma: float = 1.5
    lam: float = 2.1
    gate_q: float = 0.95
    retrieval_features: str = "clip"
    positive_rule: str = "query"
    progress: bool = False

    @cached_property
    def x(self) -> torch.Tensor:
        """Test CLS tokens (N, d) on the device (moved once)."""
        return self.setup.test.cls.to(self.setup.clip.device)

    @cached_property
    def x_train(self) -> torch.Tensor:
        """Train CLS tokens (B, d) on the device: the SAE's data, tau's in-domain data and the VS2++ bank."""
        return self.setup.train.cls.to(self.setup.clip.device)

    @cached_property
    def neighbours(self) -> torch.Tensor:
        """(N, M) indices into the train bank of each test query's M nearest neighbours (cosine)."""
        M = min(self.setup.profile.n_neighbors, len(self.setup.train.labels))
        return neighbour_indices(self.setup, M, self.retrieval_features, self.progress)

    @cached_property
    def bank_dirs(self) -> torch.Tensor:
        """Decoded SAE directions W_dec^T c of the train bank (B, d), without b_pre."""
        return bank_directions(self.sae, self.x_train)

    def vs2pp_note(self) -> str:
        return f"N={self.neighbours.shape[1]}, {self.retrieval_features} retrieval, positives: {self.positive_rule}"


def row_zero_shot(c: Context) -> Steered:
    out = Steered("CLIP zero-shot", c.x, note=f"templates: {c.setup.profile.templates}")
    groups = superclasses(c.setup.dataset)
    if groups is not None:        # the toy world: how many errors confuse classes of one super-class
        within = metrics.errors_within_groups(c.setup.logits(c.x), c.setup.test.labels, groups)
        out.info["zs_errors_within_superclass"] = within
        if within is not None:
            out.note += f"; {within:.0f}% of errors inside the true super-class"
    return out


def row_sae_rec(c: Context) -> Steered:
    """SAE^F_REC: the reconstruction D(c) (gamma = 1)."""
    return Steered("SAE^F_REC", steer.sae_reconstruction(c.x, c.sae))


def row_sae_rec_gamma(c: Context) -> Steered:
    """SAE^{F+gamma}_REC: the amplified reconstruction D(gamma c)."""
    return Steered("SAE^{F+g}_REC", steer.sae_reconstruction(c.x, c.sae, c.gamma), note=f"gamma {c.gamma}")


def row_vs2(c: Context) -> Steered:
    return Steered("VS2", steer.vs2(c.x, c.sae, c.gamma, c.lam), note=f"gamma {c.gamma}, lambda {c.lam}")


def train_mean(c: Context) -> torch.Tensor:
    """mu: (d,) the mean of the UNLABELLED train CLS tokens (what centroid steering and VS2's centroid rows use)."""
    return c.x_train.double().mean(0).float()


def row_centroid(c: Context) -> Steered:
    """Centroid steering, no SAE: x + alpha (x - mu), mu the unlabelled train mean, alpha = lam (gamma - 1), the
    alpha of VS2 at (gamma, lam) by Proposition 3.1 (`steer.centroid_alpha`)."""
    alpha = steer.centroid_alpha(c.gamma, c.lam)
    return Steered("centroid steering (no SAE)", steer.centroid_steering(c.x, train_mean(c), alpha),
                   note=f"alpha = lam (gamma - 1) = {alpha:.3g}, mu = unlabelled train mean")


def row_vs2_centroid_part(c: Context) -> Steered:
    """VS2's centroid part alone: x + lam (gamma - 1)(x - b_pre), rescaled (Proposition 3.1)."""
    v_c, _ = steer.vs2_parts(c.x, c.sae, c.gamma)
    return Steered("  VS2 centroid part", steer.apply_steering(c.x.to(v_c.device), v_c, c.lam),
                   note="alpha (x - b_pre) only")


def row_vs2_residual_part(c: Context) -> Steered:
    """VS2's residual part alone: x + lam (gamma - 1)(D(c) - x), rescaled (Proposition 3.1)."""
    _, v_r = steer.vs2_parts(c.x, c.sae, c.gamma)
    return Steered("  VS2 residual part", steer.apply_steering(c.x.to(v_r.device), v_r, c.lam),
                   note="alpha eps(x) only")


def centroid_geometry(c: Context) -> dict:
    """||mu||, the mean ||x - mu|| over test tokens and their ratio (mu the unlabelled train mean): how much of a
    CLS token is the shared centroid that VS2 removes about half of."""
    mu = train_mean(c)
    dev = (c.x - mu.to(c.x.device)).norm(dim=-1).mean().item()
    return {"mu_norm": mu.norm().item(), "deviation_norm": dev, "ratio": mu.norm().item() / dev,
            "b_pre_to_mu": (c.sae.b_pre.cpu() - mu.cpu()).norm().item()}


def row_gate_in_domain(c: Context) -> Steered:
    """The gate with the target-domain SAE; tau and mu from this dataset's own train split (not the paper's gate)."""
    mu = c.x_train.mean(0)
    tau = steer.gate_threshold(c.sae, c.x_train, mu, c.gate_q)
    out, mask = steer.gated_vs2(c.x, c.sae, mu, tau, c.gamma, c.lam)
    return Steered("VS2 + FVU gate (in-domain tau)", out, mask.float().mean().item(),
                   f"target-domain SAE, tau from own train split, q {c.gate_q}, tau {tau:.3f}", {"tau": tau})


def row_vs2_general(c: Context) -> Steered | None:
    """VS2 with the generalized SAE, ungated (paper v3 Table 3, second row)."""
    if c.general is None:
        return None
    return Steered("VS2 (generalized SAE)", steer.vs2(c.x, c.general.sae, c.gamma, c.lam),
                   note=f"SAE on {'+'.join(c.general.train_datasets)} train")


def row_gate_general(c: Context) -> Steered | None:
    """The paper's gate (v3 §4.3): generalized SAE, tau from the unlabelled train union, coverage reported."""
    if c.general is None:
        return None
    g = c.general
    tau = steer.gate_threshold(g.sae, g.x_tau, g.mu, c.gate_q)
    out, mask = steer.gated_vs2(c.x, g.sae, g.mu, tau, c.gamma, c.lam)
    return Steered("VS2 + FVU gate", out, mask.float().mean().item(),
                   f"generalized SAE, tau from {'+'.join(g.tau_datasets)} train, q {c.gate_q}, tau {tau:.3f}",
                   {"tau": tau})


def row_vs2pp_pseudo(c: Context) -> Steered:
    """VS2++ with S+/S- from CLIP zero-shot pseudo-labels of the neighbours and the query (no labels used)."""
    nn_idx = c.neighbours
    bank, query = vs2pp_labels(c.setup, "pseudo")
    pos = retrieval.positive_mask(bank[nn_idx], query, c.positive_rule)
    s_minus = (~pos).any(1).float().mean().item()      # fraction of queries with a non-empty S- (eq. 4)
    return Steered("VS2++ (pseudo)", vs2pp_eval(c.setup, c.sae, pos, nn_idx, c.gamma, c.lam, bank_dirs=c.bank_dirs),
                   note=c.vs2pp_note() + f", S- non-empty for {100 * s_minus:.0f}% of queries",
                   info={"s_minus_nonempty": s_minus})


def row_vs2pp_oracle(c: Context) -> Steered:
    """VS2++ with S+/S- from the true labels of the neighbours (and, rule "query", of the query)."""
    nn_idx, s = c.neighbours, c.setup
    bank, query = vs2pp_labels(s, "oracle")
    pos = retrieval.positive_mask(bank[nn_idx], query, c.positive_rule)
    who = "neighbours and query" if c.positive_rule == "query" else "neighbours"
    s_minus = (~pos).any(1).float().mean().item()
    return Steered("VS2++ (oracle)", vs2pp_eval(s, c.sae, pos, nn_idx, c.gamma, c.lam, bank_dirs=c.bank_dirs),
                   note=c.vs2pp_note() + f", true labels of {who}, S- non-empty for {100 * s_minus:.0f}%",
                   info={"s_minus_nonempty": s_minus})


def row_pass(c: Context) -> Steered:
    """VS2 with the PASS SAE (labels were used only to train it)."""
    return Steered("VS2 + PASS", steer.vs2(c.x, c.pass_sae, c.gamma, c.lam),
                   note=f"w_aux {c.setup.profile.w_aux}, {c.setup.profile.pass_variant}")


ROWS: tuple[Callable[[Context], Steered | None], ...] = (
    row_zero_shot, row_sae_rec, row_sae_rec_gamma, row_centroid, row_vs2, row_vs2_centroid_part,
    row_vs2_residual_part, row_vs2_general, row_gate_general, row_gate_in_domain,
    row_vs2pp_pseudo, row_vs2pp_oracle, row_pass)


# --------------------------------------------------------------------------------------------- the SAEs
def train_pass(setup: Setup, progress: bool = False, **overrides) -> tuple[TopKSAE, dict]:
    """The PASS SAE of the table: this dataset's train CLS tokens with their TRUE train labels, w_aux and variant
    from the profile."""
    p = setup.profile
    return setup.train_sae(labels=setup.train.labels, w_aux=p.w_aux, progress=progress, **overrides)


def general_gate_data(setup: Setup, sae: TopKSAE | None = None, *, train_datasets: tuple[str, ...] | None = None,
                      tau_datasets: tuple[str, ...] | None = None,
                      train_features: Callable[[str], Features] | None = None,
                      progress: bool = False) -> tuple[GateData, dict | None]:
    """The generalized SAE and tau set of the paper's gate: the SAE is trained on the union of `train_datasets`'
    TRAIN splits (default `Profile.gate_sae_datasets`, else the profile's datasets; the evaluated dataset need not
    be one of them: out-of-domain datasets are not, paper v3 Table 3), mu is that union's mean, and x_tau is the union of
    `tau_datasets`' TRAIN splits (default `Profile.gate_tau_datasets`, else the same datasets); no labels are used.
    `train_features(name)` returns a dataset's train Features (default: this set-up's model and cache).
    Returns (GateData, training history or None when `sae` is given)."""
    p = setup.profile
    train_datasets = tuple(train_datasets or p.gate_sae_datasets or p.datasets)
    tau_datasets = tuple(tau_datasets or p.gate_tau_datasets or train_datasets)

    def default(name: str) -> Features:
        if name == setup.dataset:
            return setup.train
        return cached_features(setup.clip, load_dataset(name, "train", limit=p.n_train), batch_size=p.image_batch,
                               progress=progress, amp=p.feature_amp)

    get = train_features or default
    feats = {name: get(name).cls for name in dict.fromkeys(train_datasets + tau_datasets)}
    X = torch.cat([feats[n] for n in train_datasets])
    hist = None
    if sae is None:
        sae, hist = trainer.train_sae(X, progress=progress, **setup.train_kwargs())
    x_tau = torch.cat([feats[n] for n in tau_datasets])
    return GateData(sae, X.double().mean(0).float().to(sae.device), x_tau, train_datasets, tau_datasets), hist


def training_report(sae: TopKSAE, hist: dict | None, x_test: torch.Tensor, paper: float | None = None) -> dict:
    """Steps, epochs, selected epoch, train / held-out FVU (from the history) and test FVU of one SAE."""
    out = trainer.summary(hist) if hist is not None else {"steps": None, "epochs": None, "selected_epoch": None,
                                                         "train_fvu": None, "heldout_fvu": None}
    return {**out, "test_fvu": sae.fvu(x_test), "paper_fvu": paper}


# ---------------------------------------------------------------------------------------------- the table
def check_run_args(gamma: float | None, lam: float | None, gate_q: float, retrieval_features: str,
                   positive_rule: str) -> None:
    """Clear errors for run arguments, raised before anything expensive starts."""
    steer.check_finite(**{name: v for name, v in (("gamma", gamma), ("lam", lam), ("gate_q", gate_q))
                          if v is not None})
    if not 0.0 < gate_q <= 1.0:
        raise ValueError(f"gate_q must be in (0, 1], got {gate_q}")
    if retrieval_features not in ("clip", "dinov2"):
        raise ValueError(f"unknown retrieval features {retrieval_features!r}; choose 'clip' or 'dinov2'")
    if positive_rule not in retrieval.POSITIVE_RULES:
        raise ValueError(f"unknown positive rule {positive_rule!r}; choose one of {retrieval.POSITIVE_RULES}")


def run_reproduce(profile=None, dataset: str | None = None, *, model: str | None = None, pretrained: str | None = "",
                  device: str | None = None, retrieval_features: str = "clip", positive_rule: str = "query",
                  gate_q: float = 0.95, gamma: float | None = None, lam: float | None = None,
                  pass_variant: str | None = None, progress: bool = True, setup: Setup | None = None, sae=None,
                  pass_sae=None, general=None) -> Result:
    """Run every row of the table on one dataset/backbone; returns a `Result` (print `result.table()`).
    Pass trained `sae` / `pass_sae` (and `general`: a GateData) to reuse them; otherwise they are trained with the
    profile's settings (`pass_variant` overrides the profile's PASS variant)."""
    check_run_args(gamma=gamma, lam=lam, gate_q=gate_q, retrieval_features=retrieval_features,
                   positive_rule=positive_rule)                       # before any model, feature or training
    s = setup or load_setup(profile, dataset, model=model, pretrained=pretrained, device=device, progress=progress)
    if pass_variant is not None:
        from dataclasses import replace
        s = replace(s, profile=replace(s.profile, pass_variant=pass_variant))
    p, dev = s.profile, s.clip.device
    gamma = p.gamma if gamma is None else gamma
    lam = p.lam if lam is None else lam
    res = Result(s.dataset, s.clip.name, s.clip.pretrained, p.name, s.real, retrieval_features,
                 {"gamma": gamma, "lam": lam, "epochs": p.epochs, "min_steps": p.min_steps, "holdout": p.holdout,
                  "gate_q": gate_q, "neighbors": p.n_neighbors, "positive_rule": positive_rule,
                  "templates": p.templates, "n_train": len(s.train.labels), "n_test": len(s.test.labels),
                  "w_aux": p.w_aux, "pass_variant": p.pass_variant,
                  "sae_bf16": p.bf16, "feature_amp": p.feature_amp, "device": str(dev)})
    x_test = s.test.cls.to(dev)
    fvu_ref = paper_fvu(s.dataset, s.clip.name, s.clip.pretrained)
    reports = {}
    hist = None
    if sae is None:
        sae, hist = s.train_sae(progress=progress)
    reports["target-domain"] = training_report(sae, hist, x_test, fvu_ref)
    res.settings.update(k=sae.k, n_latents=sae.n_latents)      # of the SAE actually used
    hist = None
    if pass_sae is None:
        pass_sae, hist = train_pass(s, progress=progress)
    reports["PASS"] = training_report(pass_sae, hist, x_test)
    if general is None:
        own = tuple(p.gate_sae_datasets or p.datasets) == (s.dataset,)
        # a union of this dataset alone trains the same SAE (same data, settings and seed): reuse it
        general, hist = general_gate_data(s, sae if own else None, progress=progress)
        reports["generalized"] = reports["target-domain"] if own else training_report(general.sae, hist, x_test)
    res.settings["gate_datasets"] = {"sae": list(general.train_datasets), "tau": list(general.tau_datasets)}
    res.settings["sae_training"] = reports

    ctx = Context(s, sae, pass_sae, general, gamma, lam, gate_q, retrieval_features, positive_rule, progress)
    base = s.accuracy(ctx.x)
    base_right = s.logits(ctx.x).argmax(-1) == s.test.labels
    res.settings["centroid"] = centroid_geometry(ctx)
    for row in ROWS:
        out = row(ctx)
        if out is None:
            continue
        acc = s.accuracy(out.cls)
        se = metrics.paired_se(s.logits(out.cls).argmax(-1) == s.test.labels, base_right)
        res.rows.append(Row(out.method, acc, acc - base, out.coverage,
                            paper_value(out.method, s.dataset, s.clip.name, s.clip.pretrained), out.note, se))
        if "zs_errors_within_superclass" in out.info:
            res.settings["zs_errors_within_superclass"] = out.info["zs_errors_within_superclass"]
        if "s_minus_nonempty" in out.info:
            kind = "pseudo" if "pseudo" in out.method else "oracle"
            res.settings.setdefault("s_minus_nonempty", {})[kind] = out.info["s_minus_nonempty"]
    return res


# ------------------------------------------------------------------------------------ PASS trade-off (Table 12)
PASS_TRADEOFF_W_AUX = (0.1, 0.5, 0.8, 1.0, 2.0)


def pass_tradeoff(setup: Setup, w_aux: tuple[float, ...] = PASS_TRADEOFF_W_AUX,
                  variants: tuple[str, ...] = ("eq7", "ratio"), gamma: float | None = None, lam: float | None = None,
                  progress: bool = False) -> list[dict]:
    """Reconstruction vs class alignment as w_aux grows, for each PASS variant (the shape of paper v3 Table 12).
    One PASS SAE per (variant, w_aux), trained like the table's (true train labels, the profile's budget); each row:
    test FVU, held-out FVU, class alignment = the within-class fraction of test code variance (lower: codes closer
    to their class mean), mean code norm (a collapse shows as codes shrinking to 0) and VS2 top-1 with that SAE.
    w_aux = 0 (no PASS) is the first row of each variant for reference."""
    from .prototype import pass_loss
    p = setup.profile
    gamma = p.gamma if gamma is None else gamma
    lam = p.lam if lam is None else lam
    x = setup.test.cls.to(setup.clip.device)
    y = setup.test.labels.to(setup.clip.device)
    out = []
    for variant in variants:
        for w in (0.0,) + tuple(w_aux):
            sae, hist = setup.train_sae(labels=setup.train.labels if w > 0 else None, w_aux=w, pass_variant=variant,
                                        progress=progress)
            vals, idx = sae.encode_sparse(x)
            out.append({"variant": variant, "w_aux": w, "test_fvu": sae.fvu(x),
                        "heldout_fvu": trainer.summary(hist)["heldout_fvu"],
                        "within_class_fraction": pass_loss(vals, idx, y, sae.n_latents, variant="ratio").item(),
                        "code_norm": vals.norm(dim=1).mean().item(),
                        "vs2_top1": setup.accuracy(steer.vs2(x, sae, gamma, lam))})
    return out
