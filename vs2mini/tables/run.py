"""What every table builds from a set-up: `Run` (set-ups, SAEs and gate data, each built once per run), VS2++
neighbours and labels, the paper's gate data, training reports, and the shared scoring helpers.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..clip.features import Features, cached_features, cls_to_logits, dinov2_features
from ..data.registry import load_dataset
from ..method import metrics, retrieval, train
from ..method.sae import TopKSAE
from ..paper import TABLE_6_FVU, paper_backbone
from ..config import Profile, get_profile
from ..pipeline import Setup, load_setup

RETRIEVAL_FEATURES = ("clip", "dinov2")      # VS2++ retrieval: CLIP image embeddings (default) or DINOv2 (the paper's)

# Paper v3 Table 6 (in vs2mini/paper.py): FVU of the dataset-specific SAEs by (dataset, backbone).
PAPER_FVU = {(ds, bb): v for ds, vals in TABLE_6_FVU.items() for bb, v in zip(("ViT-B-32", "ViT-B-16"), vals)}


def paper_fvu(dataset: str, model: str, pretrained: str | None) -> float | None:
    """The paper's Table 6 FVU for this dataset and backbone (OpenAI weights only), else None."""
    return PAPER_FVU.get((dataset, paper_backbone(model))) if pretrained == "openai" else None


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
        q_feat = dinov2_features(setup.test_set, device=dev, progress=progress)
        bank_feat = dinov2_features(setup.train_set, device=dev, progress=progress)
    else:
        raise ValueError(f"unknown retrieval features {features!r}; choose one of {RETRIEVAL_FEATURES}")
    return retrieval.knn(q_feat.to(dev), bank_feat.to(dev), n)[1].cpu()


@dataclass
class GateData:
    """The paper's gate (v3 §4.3): a generalized SAE, its training mean mu (d,) and the unlabelled CLS tokens
    x_tau (M, d) whose per-sample FVU quantile gives tau."""
    sae: TopKSAE
    mu: torch.Tensor
    x_tau: torch.Tensor
    train_datasets: tuple[str, ...]
    tau_datasets: tuple[str, ...]


def train_pass(setup: Setup, progress: bool = False, **overrides) -> tuple[TopKSAE, dict]:
    """The PASS SAE of the table: this dataset's train CLS tokens with their TRUE train labels, w_aux and variant
    from the profile."""
    p = setup.profile
    return setup.train_sae(labels=setup.train.labels, w_aux=p.pass_.w_aux, progress=progress, **overrides)


def general_gate_data(setup: Setup, sae: TopKSAE | None = None, *, train_datasets: tuple[str, ...] | None = None,
                      tau_datasets: tuple[str, ...] | None = None,
                      train_features: Callable[[str], Features] | None = None,
                      progress: bool = False) -> tuple[GateData, dict | None]:
    """The generalized SAE and tau set of the paper's gate: the SAE is trained on the union of `train_datasets`'
    TRAIN splits (default `GateSettings.sae_datasets`, else the profile's datasets; the evaluated dataset need not
    be one of them: out-of-domain datasets are not, paper v3 Table 3), mu is that union's mean, and x_tau is the union of
    `tau_datasets`' TRAIN splits (default `GateSettings.tau_datasets`, else the same datasets); no labels are used.
    `train_features(name)` returns a dataset's train Features (default: this set-up's model and cache).
    Returns (GateData, training history or None when `sae` is given)."""
    p = setup.profile
    train_datasets = tuple(train_datasets or p.gate.sae_datasets or p.datasets)
    tau_datasets = tuple(tau_datasets or p.gate.tau_datasets or train_datasets)

    def default(name: str) -> Features:
        if name == setup.dataset:
            return setup.train
        return cached_features(setup.clip, load_dataset(name, "train", limit=p.data.n_train),
                               batch_size=p.data.image_batch, progress=progress, amp=p.data.feature_amp)

    get = train_features or default
    feats = {name: get(name).cls for name in dict.fromkeys(train_datasets + tau_datasets)}
    X = torch.cat([feats[n] for n in train_datasets])
    hist = None
    if sae is None:
        sae, hist = train.train_sae(X, progress=progress, **setup.train_kwargs())
    x_tau = torch.cat([feats[n] for n in tau_datasets])
    return GateData(sae, X.double().mean(0).float().to(sae.device), x_tau, train_datasets, tau_datasets), hist


class Run:
    """One run's shared work, each piece built on first use and then reused by every table that asks for it: the
    set-up of each dataset, its target-domain SAE, its PASS SAE and the paper's gate data (with their training
    histories, for the reports). One model per run (ViT-L/14's table makes a Run of its own).

        run = Run("toy")
        sae = run.sae("toy")            # trained once; run.sae("toy") again returns the same SAE
    """

    def __init__(self, profile: str | Profile | None = None, *, model: str | None = None,
                 pretrained: str | None = "", device: str | None = None, progress: bool = False):
        self.profile = profile if isinstance(profile, Profile) else get_profile(profile)
        self.load = dict(model=model, pretrained=pretrained, device=device)
        self.progress = progress
        self.default = self.profile.datasets[0]
        self._setups: dict[str, Setup] = {}
        self._built: dict[tuple[str, str], tuple[object, dict | None]] = {}   # (kind, dataset) -> (object, history)

    @classmethod
    def of(cls, *setups: Setup, sae: TopKSAE | None = None, pass_sae: TopKSAE | None = None,
           gate: GateData | None = None, saes: dict[str, TopKSAE] | None = None, profile: Profile | None = None,
           progress: bool = False) -> "Run":
        """A run around set-ups already loaded (notebooks, tests, benchmarks), the first the default dataset, with
        whatever is already trained: `sae`, `pass_sae`, `gate` of the first; `saes` by dataset. `profile`: the
        run's (default the first set-up's)."""
        run = cls(profile or setups[0].profile, progress=progress)
        run.default = setups[0].dataset
        run._setups.update({s.dataset: s for s in setups})
        ready = {("sae", ds): m for ds, m in (saes or {}).items()}
        ready.update({(kind, run.default): m for kind, m in (("sae", sae), ("pass", pass_sae), ("gate", gate))
                      if m is not None})
        run._built.update({key: (m, None) for key, m in ready.items()})
        return run

    def setup(self, dataset: str | None = None) -> Setup:
        ds = dataset or self.default
        if ds not in self._setups:
            self._setups[ds] = load_setup(self.profile, ds, progress=self.progress, **self.load)
        return self._setups[ds]

    def _get(self, kind: str, dataset: str | None, build: Callable[[Setup], tuple[object, dict | None]]):
        key = (kind, dataset or self.default)
        if key not in self._built:
            self._built[key] = build(self.setup(key[1]))
        return self._built[key]

    def sae(self, dataset: str | None = None) -> TopKSAE:
        """The profile's target-domain SAE of `dataset` (its train CLS tokens)."""
        return self._get("sae", dataset, lambda s: s.train_sae(progress=self.progress))[0]

    def pass_sae(self, dataset: str | None = None) -> TopKSAE:
        """The PASS SAE of `dataset` (its true train labels; `train_pass`)."""
        return self._get("pass", dataset, lambda s: train_pass(s, progress=self.progress))[0]

    def gate(self, dataset: str | None = None) -> GateData:
        """The paper's gate data for `dataset` (`general_gate_data` on the profile's gate datasets). A union of this
        dataset alone trains the same SAE as the target-domain one (same data, settings and seed): it is reused."""
        def build(s: Setup):
            own = tuple(self.profile.gate.sae_datasets or self.profile.datasets) == (s.dataset,)
            return general_gate_data(s, self.sae(s.dataset) if own else None, progress=self.progress)
        return self._get("gate", dataset, build)[0]

    def history(self, kind: str, dataset: str | None = None) -> dict | None:
        """The training history of a piece built by this run ("sae", "pass", "gate"); None when it came ready-made
        (`Run.of`) or was reused."""
        return self._built.get((kind, dataset or self.default), (None, None))[1]


def training_report(sae: TopKSAE, hist: dict | None, x_test: torch.Tensor, paper: float | None = None) -> dict:
    """Steps, epochs, selected epoch, train / held-out FVU (from the history) and test FVU of one SAE."""
    out = train.summary(hist) if hist is not None else {"steps": None, "epochs": None, "selected_epoch": None,
                                                         "train_fvu": None, "heldout_fvu": None}
    return {**out, "test_fvu": sae.fvu(x_test), "paper_fvu": paper}


def _accuracy(s: Setup, cls: torch.Tensor, head: torch.Tensor | None = None, k: int = 1) -> float:
    """Top-k (%) of test CLS tokens (N, d) under `head` (default: the set-up's zero-shot head)."""
    return metrics.accuracy(cls_to_logits(s.clip, cls, s.head if head is None else head).cpu(), s.test.labels, k)


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


def _positives_note(rule: str) -> str:
    """The notes line of a table's VS2++ positive rule (--positives)."""
    return ("positives by eq. 4 (same label as the query)" if rule == "query"
            else "positives: the neighbours' majority label (sec. 4.2, --positives majority)")


def _masks(labels: dict[str, tuple[torch.Tensor, torch.Tensor]], nn_idx: torch.Tensor,
           rule: str = "query") -> dict[str, torch.Tensor]:
    """S+ masks (Q, M) per label source, from `{kind: vs2pp_labels(s, kind)}` (computed once by the
    caller: the pseudo-labels are a forward pass over the whole bank), as reproduce's VS2++ rows build them."""
    return {kind: retrieval.positive_mask(bank[nn_idx], query, rule) for kind, (bank, query) in labels.items()}


def train_mean(x_train: torch.Tensor) -> torch.Tensor:
    """mu: (d,) the mean of the UNLABELLED train CLS tokens x_train: (B, d) (centroid steering's mu)."""
    return x_train.double().mean(0).float()


def centroid_geometry(x: torch.Tensor, x_train: torch.Tensor, sae: TopKSAE) -> dict:
    """||mu||, the mean ||x - mu|| over test tokens x: (N, d) and their ratio (mu the unlabelled train mean): how
    much of a CLS token is the shared centroid that VS2 removes about half of; and ||b_pre - mu||."""
    mu = train_mean(x_train).to(x.device)
    dev = (x - mu).norm(dim=-1).mean().item()
    return {"mu_norm": mu.norm().item(), "deviation_norm": dev, "ratio": mu.norm().item() / dev,
            "b_pre_to_mu": (sae.b_pre.to(x.device) - mu).norm().item()}
