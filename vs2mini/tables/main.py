"""The paper's table for one dataset and backbone (paper v3 Table 1a, Table 11, Table 3) in one call.

Rows: CLIP zero-shot, SAE reconstruction baselines, VS2, the FVU gate (the paper's generalized-SAE gate and the
in-domain variant), VS2++ (pseudo-label and oracle), PASS. Each row is a small function of a `Context` (which SAE,
which split, which labels) returning the steered test CLS tokens it is scored on; `run_reproduce` builds the context
and scores the rows in `ROWS`. SAE^A_REC (one SAE per layer, every layer reconstructed) is not a row of this table:
it needs a forward pass through the tower per layer and lives in the depth table (`--table depth`, tables.ablations.depth).
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

from ..config import TOY_BANNER
from ..method import metrics, retrieval, steer
from ..paper import PAPER, SAE_REC_GAMMA, paper_value
from ..pipeline import Setup, load_setup
from .rows import ROWS, Context
from .run import RETRIEVAL_FEATURES, centroid_geometry, general_gate_data, paper_fvu, train_pass, training_report

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
    base_right = s.logits(ctx.x).argmax(-1) == s.test.labels
    res.settings["centroid"] = centroid_geometry(ctx.x, ctx.x_train, sae)
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
