"""Tables under distribution shift: Table 3 (§4.3), the generalized SAE and the FVU gate with its coverage."""
from __future__ import annotations

from collections import defaultdict

from .. import paper
from ..config import Profile, get_profile
from ..method import steer
from ..method.sae import TopKSAE
from ..pipeline import Setup, load_setup
from .result import Matrix, TableResult, TableRow, _result
from .run import _accuracy, general_gate_data


def ood_gate_datasets(profile: Profile) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(datasets whose train splits train the generalized SAE, those whose train FVU sets tau, evaluated datasets).
    Real profiles: the paper's (the three main train splits; CIFAR-100 + Tiny-ImageNet for tau; all nine).
    Offline: the toy base domain trains the SAE and sets tau; the base and the shifted domain are evaluated."""
    if profile.real:
        return paper.MAIN_DATASETS, ("cifar100", "tinyimagenet"), paper.TABLE_3_COLUMNS
    return ("toy",), ("toy",), ("toy", "toy-shifted")


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
