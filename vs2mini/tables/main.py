"""The paper's table for one dataset and backbone (paper v3 Table 1a, Table 11, Table 3) in one call.

Rows: CLIP zero-shot, SAE reconstruction baselines, VS2, the FVU gate (the paper's generalized-SAE gate and the
in-domain variant), VS2++ (pseudo-label and oracle), PASS. Each row is a small function of a `Context` (which SAE,
which split, which labels) returning the steered test CLS tokens it is scored on; `run_reproduce` builds the context
and scores the rows in `ROWS`. SAE^A_REC (one SAE per layer, every layer reconstructed) is not a row of this table:
it needs a forward pass through the tower per layer and lives in the depth table (`--table depth`, tables.ablations.depth).
Documented choices where the paper is silent:
- gamma, lam: the CIFAR-100 B/32 optimum (1.5, 2.1) for every method (paper v3 App. B; per-dataset values not given).
  SAE^{F+g}_REC uses the paper's fixed gamma = 1.5 (v3 §4.1, `paper.SAE_REC_GAMMA`) whatever gamma VS2 runs at,
  unless the profile's `rec_gamma` (config.SteerSettings) asks for another.
- FVU gate, as the paper runs it (v3 §4.3): a generalized SAE trained on the union of the profile's datasets' train
  splits; tau = the q-quantile of per-sample FVU over an unlabelled train union (`GateSettings.tau_datasets`,
  CIFAR-100 + Tiny-ImageNet in `full`), mu = the generalized SAE's training mean; q = 0.95. The in-domain row takes
  tau and mu from this dataset's own train split with the target-domain SAE.
- VS2++ retrieval: CLIP image embeddings by default (the paper used DINOv2; size not given), bank = train split.
- VS2++ oracle (the paper's reading is open, v3 §4.2 vs eq. 4): with the "query" rule, S+ = neighbours whose true
  label equals the query's true label, so the oracle sees the test label (a strict upper bound); with "majority",
  S+ = neighbours with the most frequent true label, which uses neighbour labels only.
"""
from __future__ import annotations

from ..config import Profile
from ..method import metrics, retrieval, steer
from ..paper import PAPER
from .result import TableResult, TableRow, _paper_key, _result
from .rows import ROWS, Context
from .run import RETRIEVAL_FEATURES, Run, centroid_geometry, paper_fvu, training_report

# The main table's columns (TableRow.ours keys): top-1 (%), its change over CLIP zero-shot (points), the paired
# standard error of that change over test images (points), and the share of test images steered (%, gate rows).
TOP1, GAIN, SE, STEERED = "top-1", "vs ZS", "se", "steered %"
COLUMNS = (TOP1, GAIN, SE, STEERED)


def training_lines(reports: dict[str, dict]) -> list[str]:
    """One line per SAE the table used: steps, the selected epoch and its FVU on train / held-out / test."""
    lines = []
    for name, t in reports.items():
        pap = f", paper (Table 6) {t['paper_fvu']:.4f}" if t.get("paper_fvu") is not None else ""
        train, held = (f"{t[k]:.4f}" if t.get(k) is not None else "-" for k in ("train_fvu", "heldout_fvu"))
        by = f" by {t['selected_by'].replace('_', ' ')}" if t.get("selected_by") else ""
        how = (f"{t['steps']} steps ({t['epochs']} epochs, selected epoch {t['selected_epoch']}{by})"
               if t.get("steps") is not None else "given to the run (not trained by it)")
        lines.append(f"SAE {name}: {how}, FVU train {train} / held-out {held} / test {t['test_fvu']:.4f}{pap}")
    return lines


def centroid_line(cen: dict, gamma: float, lam: float) -> str:
    """The run's centroid geometry in one line (the main table's note; book chapter "When does VS2 help?")."""
    a = steer.centroid_alpha(gamma, lam)
    return (f"centroid: ||mu|| {cen['mu_norm']:.3f}, mean ||x - mu|| {cen['deviation_norm']:.3f}, ratio "
            f"{cen['ratio']:.3f} (mu = unlabelled train mean); VS2 at (gamma, lambda) removes "
            f"{100 * a / (1 + a):.0f}% of b_pre (Prop. 3.1)")


def check_run_args(profile: Profile) -> None:
    """Clear errors for the settings the rows read (`--gamma`-like overrides of the profile), raised before anything
    expensive starts."""
    st, q = profile.steer, profile.gate.q
    steer.check_finite(gamma=st.gamma, lam=st.lam, rec_gamma=st.rec_gamma, gate_q=q)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"gate_q must be in (0, 1], got {q}")
    if st.retrieval not in RETRIEVAL_FEATURES:
        raise ValueError(f"unknown retrieval features {st.retrieval!r}; choose one of {RETRIEVAL_FEATURES}")
    if st.positive_rule not in retrieval.POSITIVE_RULES:
        raise ValueError(f"unknown positive rule {st.positive_rule!r}; choose one of {retrieval.POSITIVE_RULES}")


def run_reproduce(profile: str | Profile | None = None, dataset: str | None = None, *, model: str | None = None,
                  pretrained: str | None = "", device: str | None = None, progress: bool = True,
                  run: Run | None = None) -> TableResult:
    """Run every row of the table on one dataset/backbone; returns a `TableResult` named "main" (print
    `result.table()`; `result.column(GAIN)` is each row's change over zero-shot).
    The rows' settings are the profile's (`get_profile(..., gamma=2.0)` changes one). `run`: a `Run` whose set-up
    and SAEs are reused (`Run.of(setup, sae=...)` around ones already trained); otherwise one is made here."""
    if run is None:
        run = Run(profile, model=model, pretrained=pretrained, device=device, progress=progress)
    elif profile is not None:
        raise ValueError("pass either a profile or a run (whose profile it is), not both")
    check_run_args(run.profile)                                   # before any model, feature or training
    s = run.setup(dataset)
    p, dev = s.profile, s.clip.device
    st = p.steer
    key, paper_setting = _paper_key(s)
    res = _result("main", s, COLUMNS, paper_setting, retrieval=st.retrieval)
    res.settings = {"gamma": st.gamma, "lam": st.lam, "rec_gamma": st.rec_gamma, "epochs": p.train.epochs,
                    "min_steps": p.train.min_steps, "holdout": p.train.holdout,
                    "gate_q": p.gate.q, "neighbors": st.n_neighbours, "positive_rule": st.positive_rule,
                    "retrieval": st.retrieval, "templates": p.data.templates, "n_train": len(s.train.labels),
                    "n_test": len(s.test.labels), "w_aux": p.pass_.w_aux, "pass_variant": p.pass_.variant,
                    "sae_bf16": p.sae.bf16, "feature_amp": p.data.feature_amp, "device": str(dev)}
    x_test = s.test.cls.to(dev)
    sae, pass_sae, general = run.sae(s.dataset), run.pass_sae(s.dataset), run.gate(s.dataset)
    reports = {"target-domain": training_report(sae, run.history("sae", s.dataset), x_test,
                                                paper_fvu(s.dataset, s.clip.name, s.clip.pretrained))}
    res.settings.update(k=sae.k, n_latents=sae.n_latents)      # of the SAE actually used
    reports["PASS"] = training_report(pass_sae, run.history("pass", s.dataset), x_test)
    reports["generalized"] = (reports["target-domain"] if general.sae is sae
                              else training_report(general.sae, run.history("gate", s.dataset), x_test))
    res.settings["gate_datasets"] = {"sae": list(general.train_datasets), "tau": list(general.tau_datasets)}
    res.settings["sae_training"] = reports

    ctx = Context(s, sae, pass_sae, general, run.progress)
    base = s.accuracy(ctx.x)
    base_right = s.logits(ctx.x).argmax(-1) == s.test.labels
    res.settings["centroid"] = centroid_geometry(ctx.x, ctx.x_train, sae)
    for row in ROWS:
        out = row(ctx)
        if out is None:
            continue
        acc = s.accuracy(out.cls)
        se = metrics.paired_se(s.logits(out.cls).argmax(-1) == s.test.labels, base_right)
        steered = None if out.coverage is None else 100.0 * out.coverage
        res.rows.append(TableRow(out.method, {TOP1: acc, GAIN: acc - base, SE: se, STEERED: steered},
                                 {TOP1: PAPER.get(out.method, {}).get(key)}, out.note))
        if "zs_errors_within_superclass" in out.info:
            res.settings["zs_errors_within_superclass"] = out.info["zs_errors_within_superclass"]
        if "s_minus_nonempty" in out.info:
            kind = "pseudo" if "pseudo" in out.method else "oracle"
            res.settings.setdefault("s_minus_nonempty", {})[kind] = out.info["s_minus_nonempty"]
    res.notes = [f"{SE}: paired standard error of '{GAIN}' over test images (per-image correctness difference)",
                 centroid_line(res.settings["centroid"], st.gamma, st.lam), *training_lines(reports)]
    return res
