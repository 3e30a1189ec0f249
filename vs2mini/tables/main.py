"""The paper's table for one dataset and backbone (paper v3 Table 1a, Table 11, Table 3) in one call.

Rows: CLIP zero-shot, SAE reconstruction baselines, VS2, the FVU gate (the paper's generalized-SAE gate and the
in-domain variant), VS2++ (pseudo-label and oracle), PASS. Each row is a small function of a `Context` (which SAE,
which split, which labels) returning the steered test CLS tokens it is scored on; `run_reproduce` builds the context
and scores the rows in `ROWS`. SAE^A_REC (one SAE per layer, every layer reconstructed) is not a row of this table:
it needs a forward pass through the tower per layer and lives in the depth table (`--table depth`, experiments.depth).
Documented choices where the paper is silent:
- gamma, lam: the CIFAR-100 B/32 optimum (1.5, 2.1) for every method (paper v3 App. B; per-dataset values not given).
  SAE^{F+g}_REC uses the paper's fixed gamma = 1.5 (v3 §4.1, `paper.SAE_REC_GAMMA`) whatever gamma VS2 runs at,
  unless `rec_gamma` asks for another.
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

from ..config import TOY_BANNER
from ..data.registry import superclasses
from ..method import metrics, retrieval, steer
from ..method.sae import TopKSAE
from ..paper import PAPER, SAE_REC_GAMMA, paper_value
from ..pipeline import Setup, load_setup
from .run import (RETRIEVAL_FEATURES, GateData, general_gate_data, neighbour_indices, paper_fvu, train_pass,
                  training_report, vs2pp_labels)

# The published setting a toy run's table quotes for orientation (see Result.table).
TOY_REFERENCE = ("cifar100", "ViT-B-32")


@dataclass
class Row:
    method: str
    top1: float
    delta: float
    coverage: float | None = None     # fraction of test samples steered (FVU gate)
    paper: float | None = None
    note: str = ""


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
        head = f"{'method':<31} {'top-1':>7} {'vs ZS':>7} {'steered':>8} {'paper':>7}  note"
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
            lines.append(f"{r.method:<31} {r.top1:7.2f} {r.delta:+7.2f} {cov} {pap}  {r.note}")
        if any(v is not None for v in ref):
            lines.append("* the paper's number for CIFAR-100 with OpenAI ViT-B/32 (v3 Tables 1a and 11), what a real "
                         "run is compared with; not comparable with this run")
        for name, t in self.settings.get("sae_training", {}).items():
            pap = f", paper (Table 6) {t['paper_fvu']:.4f}" if t.get("paper_fvu") is not None else ""
            held = f"{t['heldout_fvu']:.4f}" if t.get("heldout_fvu") is not None else "-"
            by = f" by {t['selected_by'].replace('_', ' ')}" if t.get("selected_by") else ""
            lines.append(f"SAE {name}: {t['steps']} steps ({t['epochs']} epochs, selected epoch "
                         f"{t['selected_epoch']}{by}), FVU train {t['train_fvu']:.4f} / held-out {held} / "
                         f"test {t['test_fvu']:.4f}{pap}")
        return "\n".join(lines)

    def to_frame(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows]).set_index("method")

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "warning": self.warning}, indent=2)


# ------------------------------------------------------------------------------------------------ the rows
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
    gamma: float = steer.GAMMA
    lam: float = steer.LAM
    gate_q: float = 0.95
    retrieval_features: str = "clip"
    positive_rule: str = "query"
    progress: bool = False
    rec_gamma: float = SAE_REC_GAMMA  # SAE^{F+g}_REC's gamma: the paper's fixed 1.5 (v3 §4.1), not the run's gamma

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
        M = min(self.setup.profile.n_neighbours, len(self.setup.train.labels))
        return neighbour_indices(self.setup, M, self.retrieval_features, self.progress)

    @cached_property
    def bank_dirs(self) -> torch.Tensor:
        """Decoded SAE directions W_dec^T c of the train bank (B, d), without b_pre."""
        return steer.bank_directions(self.sae, self.x_train)

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
    """SAE^{F+gamma}_REC: the amplified reconstruction D(gamma c), gamma = `rec_gamma` (the paper's fixed 1.5)."""
    return Steered("SAE^{F+g}_REC", steer.sae_reconstruction(c.x, c.sae, c.rec_gamma), note=f"gamma {c.rec_gamma}")


def row_vs2(c: Context) -> Steered:
    return Steered("VS2", steer.vs2(c.x, c.sae, c.gamma, c.lam), note=f"gamma {c.gamma}, lambda {c.lam}")


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
    return Steered("VS2++ (pseudo)", steer.vs2pp_from_bank(c.x, c.bank_dirs, nn_idx, pos, c.gamma, c.lam),
                   note=c.vs2pp_note() + f", S- non-empty for {100 * s_minus:.0f}% of queries",
                   info={"s_minus_nonempty": s_minus})


def row_vs2pp_oracle(c: Context) -> Steered:
    """VS2++ with S+/S- from the true labels of the neighbours (and, rule "query", of the query)."""
    nn_idx, s = c.neighbours, c.setup
    bank, query = vs2pp_labels(s, "oracle")
    pos = retrieval.positive_mask(bank[nn_idx], query, c.positive_rule)
    who = "neighbours and query" if c.positive_rule == "query" else "neighbours"
    s_minus = (~pos).any(1).float().mean().item()
    return Steered("VS2++ (oracle)", steer.vs2pp_from_bank(c.x, c.bank_dirs, nn_idx, pos, c.gamma, c.lam),
                   note=c.vs2pp_note() + f", true labels of {who}, S- non-empty for {100 * s_minus:.0f}%",
                   info={"s_minus_nonempty": s_minus})


def row_pass(c: Context) -> Steered:
    """VS2 with the PASS SAE (labels were used only to train it)."""
    return Steered("VS2 + PASS", steer.vs2(c.x, c.pass_sae, c.gamma, c.lam),
                   note=f"w_aux {c.setup.profile.w_aux}, {c.setup.profile.pass_variant}")


ROWS: tuple[Callable[[Context], Steered | None], ...] = (
    row_zero_shot, row_sae_rec, row_sae_rec_gamma, row_vs2, row_vs2_general, row_gate_general, row_gate_in_domain,
    row_vs2pp_pseudo, row_vs2pp_oracle, row_pass)


# ---------------------------------------------------------------------------------------------- the table
def check_run_args(gamma: float | None, lam: float | None, gate_q: float, retrieval_features: str,
                   positive_rule: str) -> None:
    """Clear errors for run arguments, raised before anything expensive starts."""
    steer.check_finite(**{name: v for name, v in (("gamma", gamma), ("lam", lam), ("gate_q", gate_q))
                          if v is not None})
    if not 0.0 < gate_q <= 1.0:
        raise ValueError(f"gate_q must be in (0, 1], got {gate_q}")
    if retrieval_features not in RETRIEVAL_FEATURES:
        raise ValueError(f"unknown retrieval features {retrieval_features!r}; choose one of {RETRIEVAL_FEATURES}")
    if positive_rule not in retrieval.POSITIVE_RULES:
        raise ValueError(f"unknown positive rule {positive_rule!r}; choose one of {retrieval.POSITIVE_RULES}")


def run_reproduce(profile=None, dataset: str | None = None, *, model: str | None = None, pretrained: str | None = "",
                  device: str | None = None, retrieval_features: str = "clip", positive_rule: str = "query",
                  gate_q: float = 0.95, gamma: float | None = None, lam: float | None = None,
                  pass_variant: str | None = None, progress: bool = True, setup: Setup | None = None, sae=None,
                  pass_sae=None, general=None, rec_gamma: float | None = None) -> Result:
    """Run every row of the table on one dataset/backbone; returns a `Result` (print `result.table()`).
    Pass trained `sae` / `pass_sae` (and `general`: a GateData) to reuse them; otherwise they are trained with the
    profile's settings (`pass_variant` overrides the profile's PASS variant). `rec_gamma` (default the paper's 1.5)
    is SAE^{F+g}_REC's gamma; `gamma` and `lam` (default the profile's) steer VS2 and the other rows."""
    check_run_args(gamma=gamma, lam=lam, gate_q=gate_q, retrieval_features=retrieval_features,
                   positive_rule=positive_rule)                       # before any model, feature or training
    rec_gamma = SAE_REC_GAMMA if rec_gamma is None else rec_gamma
    steer.check_finite(rec_gamma=rec_gamma)
    s = setup or load_setup(profile, dataset, model=model, pretrained=pretrained, device=device, progress=progress)
    if pass_variant is not None:
        from dataclasses import replace
        s = replace(s, profile=replace(s.profile, pass_variant=pass_variant))
    p, dev = s.profile, s.clip.device
    gamma = p.gamma if gamma is None else gamma
    lam = p.lam if lam is None else lam
    res = Result(s.dataset, s.clip.name, s.clip.pretrained, p.name, s.real, retrieval_features,
                 {"gamma": gamma, "lam": lam, "rec_gamma": rec_gamma, "epochs": p.epochs, "min_steps": p.min_steps,
                  "holdout": p.holdout,
                  "gate_q": gate_q, "neighbors": p.n_neighbours, "positive_rule": positive_rule,
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

    ctx = Context(s, sae, pass_sae, general, gamma, lam, gate_q, retrieval_features, positive_rule, progress, rec_gamma)
    base = s.accuracy(ctx.x)
    for row in ROWS:
        out = row(ctx)
        if out is None:
            continue
        acc = s.accuracy(out.cls)
        res.rows.append(Row(out.method, acc, acc - base, out.coverage,
                            paper_value(out.method, s.dataset, s.clip.name, s.clip.pretrained), out.note))
        if "zs_errors_within_superclass" in out.info:
            res.settings["zs_errors_within_superclass"] = out.info["zs_errors_within_superclass"]
        if "s_minus_nonempty" in out.info:
            kind = "pseudo" if "pseudo" in out.method else "oracle"
            res.settings.setdefault("s_minus_nonempty", {})[kind] = out.info["s_minus_nonempty"]
    return res
