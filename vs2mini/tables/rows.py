"""The main table's rows (paper v3 Table 1a / 11): each row is a small function of a `Context` (which SAE, which
split, which labels) that returns the steered test CLS tokens it is scored on. `tables.main.run_reproduce` builds the
context and scores every row in `ROWS`."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import torch

from ..data.registry import superclasses
from ..method import metrics, retrieval, steer
from ..method.sae import TopKSAE
from ..pipeline import Setup
from .run import GateData, neighbour_indices, train_mean, vs2pp_labels


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
    """Everything the rows read: the set-up (splits, labels, zero-shot head, and the profile whose steering and gate
    settings the rows use) and the SAEs."""
    setup: Setup
    sae: TopKSAE                     # target-domain SAE (trained on this dataset's train split)
    pass_sae: TopKSAE                # PASS SAE (trained with this dataset's train labels)
    general: GateData | None = None  # generalized SAE for the paper's gate (None: gate rows skipped)
    progress: bool = False

    # the settings, read from the profile (config.SteerSettings, config.GateSettings)
    gamma = property(lambda self: self.setup.profile.steer.gamma)
    lam = property(lambda self: self.setup.profile.steer.lam)
    rec_gamma = property(lambda self: self.setup.profile.steer.rec_gamma)   # SAE^{F+g}_REC's: the paper's 1.5
    retrieval_features = property(lambda self: self.setup.profile.steer.retrieval)
    positive_rule = property(lambda self: self.setup.profile.steer.positive_rule)
    gate_q = property(lambda self: self.setup.profile.gate.q)

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
        M = min(self.setup.profile.steer.n_neighbours, len(self.setup.train.labels))
        return neighbour_indices(self.setup, M, self.retrieval_features, self.progress)

    @cached_property
    def bank_dirs(self) -> torch.Tensor:
        """Decoded SAE directions W_dec^T c of the train bank (B, d), without b_pre."""
        return steer.bank_directions(self.sae, self.x_train)

    def vs2pp_note(self) -> str:
        return f"N={self.neighbours.shape[1]}, {self.retrieval_features} retrieval, positives: {self.positive_rule}"


def row_zero_shot(c: Context) -> Steered:
    out = Steered("CLIP zero-shot", c.x, note=f"templates: {c.setup.profile.data.templates}")
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


def row_centroid(c: Context) -> Steered:
    """Centroid steering, no SAE: x + alpha (x - mu), mu the unlabelled train mean, alpha = lam (gamma - 1), the
    alpha of VS2 at (gamma, lam) by Proposition 3.1 (`steer.centroid_alpha`)."""
    alpha = steer.centroid_alpha(c.gamma, c.lam)
    return Steered("centroid steering (no SAE)", steer.centroid_steering(c.x, train_mean(c.x_train), alpha),
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
                   note=f"w_aux {c.setup.profile.pass_.w_aux}, {c.setup.profile.pass_.variant}")


ROWS: tuple[Callable[[Context], Steered | None], ...] = (
    row_zero_shot, row_sae_rec, row_sae_rec_gamma, row_centroid, row_vs2, row_vs2_centroid_part,
    row_vs2_residual_part, row_vs2_general, row_gate_general, row_gate_in_domain,
    row_vs2pp_pseudo, row_vs2pp_oracle, row_pass)


# ---------------------------------------------------------------------------------------------- the table
