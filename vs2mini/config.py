"""Run profiles (which model, data sizes and SAE settings a run uses) and where data and caches live.

`toy` (the default) runs offline on a CPU: the toy CLIP that vs2mini pretrains on its
generated toy world (vs2mini.data.toyworld, vs2mini.clip.pretrain), and every output it produces says so. `lite`
uses real OpenAI weights on a few thousand CIFAR-100 images (CPU-friendly, needs the downloads once). `full` is
the paper's setting (paper v3 §4.1 and App. C) and wants a GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .method.pass_loss import DEFAULT_PASS_VARIANT
from .method.steer import GAMMA, LAM
from .paper import SAE_REC_GAMMA

PROFILE_ENV = "VS2MINI_PROFILE"
TOY_BANNER = ("TOY WORLD: a toy CLIP pretrained by vs2mini on synthetic images, not the paper's setting "
              "(NOT A REAL RESULT; the paper's numbers come from OpenAI CLIP on real datasets)")
TOY_STAMP = "TOY MODEL: NOT A REAL RESULT"      # the short form, on figures
DEFAULT_PROFILE = "toy"


@dataclass(frozen=True)
class DataSettings:
    """Which images a run reads and how it encodes them."""
    n_train: int | None = None      # images per train split (None = all)
    n_test: int | None = None       # images per eval split (None = all)
    templates: str = "single"       # "single" ("a photo of a {}.") or "cifar18" (CLIP paper's 18 templates)
    image_batch: int = 256          # images per feature-extraction batch
    feature_amp: bool = False       # CLIP feature extraction under bf16 autocast (off: fp32 CLIP, as published)


@dataclass(frozen=True)
class SAESettings:
    """The SAE's shape (paper v3 App. C)."""
    expansion: int = 4              # SAE width n = expansion * d (paper v3 App. C). The paper is inconsistent:
                                    # headline B/32 VS2 64.52 equals Table 8's 8x/k=64 entry; we follow App. C (4x)
    k: int | None = None            # active latents; None = by backbone (`Profile.k_for`)
    prune_below: int | None = None  # the paper's dead-feature pruning (App. C, threshold 100): drop latents firing on
                                    # fewer fit vectors after training; None: off (why: method/train.py's docstring)
    bf16: bool = False              # SAE encoder GEMM under bf16 autocast (sparsify's forward ran in bf16); CLI --bf16
    # bf16 stays off in the CPU profiles: on CPUs without native bf16 (AVX2 only) it measured slower, not faster
    # (benchmarks/RESULTS.md); `--bf16 all` turns it on where the CPU has AVX512-BF16/AMX.


@dataclass(frozen=True)
class TrainSettings:
    """The SAE training budget. The paper does not state batch size, epochs or steps (App. C); see method/train.py."""
    epochs: int = 30                # at least this many epochs ...
    min_steps: int | None = 1000    # ... and at least this many optimiser steps (0: no floor; sparsify's warm-up), so
                                    # CUB-200 (1 step per epoch at batch 4096) trains 1,000 steps, not 30
    holdout: float = 0.1            # fraction of the train split held out to judge the SAE (best checkpoint)
    patience: int | None = None     # optimiser steps without a held-out improvement before stopping; None: run all
    batch_size: int = 4096          # SAE batch (MSAE's CLIP recipe; the paper does not state it)
    lr: float = 5e-4                # v3 App. C: "warmup from 5e-4"
    seed: int = 0                   # SAE initialisation, batch order and held-out split (method.train); CLI --seed


@dataclass(frozen=True)
class SteerSettings:
    """How the rows steer (paper v3 §3, §4.1-4.2, App. B)."""
    gamma: float = GAMMA            # v3 App. B: CIFAR-100 B/32 optimum (method/steer.py), for every method
    lam: float = LAM
    rec_gamma: float = SAE_REC_GAMMA  # SAE^{F+g}_REC's gamma: the paper's fixed 1.5 (v3 §4.1), not the run's gamma
    n_neighbours: int = 50          # VS2++ N (v3 §4.2)
    positive_rule: str = "query"    # VS2++ S+: "query" (eq. 4) or "majority" (§4.2's reading); CLI --positives
    retrieval: str = "clip"         # VS2++ neighbours by CLIP image embeddings or "dinov2" (the paper's); --retrieval


@dataclass(frozen=True)
class PassSettings:
    """PASS, the prototype-aligned SAE (paper v3 §3.3, App. K/L)."""
    w_aux: float = 0.8              # PASS weight (paper v3 App. K/L)
    variant: str = DEFAULT_PASS_VARIANT  # "eq7" (the paper's eq. 7) or "ratio" (scale-free; method/pass_loss.py)


@dataclass(frozen=True)
class GateSettings:
    """The FVU gate as the paper runs it (v3 §4.3): a generalized SAE on the union of `sae_datasets`' train splits
    (None: the profile's datasets) and tau, the q-quantile of per-sample FVU over the union of `tau_datasets`' train
    splits (None: the same datasets; the paper: CIFAR-100 + Tiny-ImageNet, without CUB-200)."""
    q: float = 0.95                 # CLI --gate-q
    sae_datasets: tuple[str, ...] | None = None
    tau_datasets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSettings:
    """How large the other tables' grids are."""
    width_k_grid: tuple[tuple[int, int], ...] | None = None   # Table 8's (expansion, k) configurations to train;
                                    # None: all 13 of the paper (real profiles) or three around the profile's (offline)
    depth_every_layer: bool = True  # Table 7's SAE^A_REC row reconstructs every layer, so it needs one SAE per layer
                                    # (12 for ViT-B/32); False trains only the steered last three and leaves it out


GROUPS = ("data", "sae", "train", "steer", "pass_", "gate", "tables")


@dataclass(frozen=True)
class Profile:
    """A run profile: the backbone and datasets, then one group of settings per part of the method."""
    name: str
    model: str                      # open_clip model name
    pretrained: str | None          # open_clip pretrained tag; None = random weights
    datasets: tuple[str, ...]       # datasets `reproduce` runs by default
    data: DataSettings = DataSettings()
    sae: SAESettings = SAESettings()
    train: TrainSettings = TrainSettings()
    steer: SteerSettings = SteerSettings()
    pass_: PassSettings = PassSettings()     # `pass` is a Python keyword
    gate: GateSettings = GateSettings()
    tables: TableSettings = TableSettings()
    cpu_threads: int | None = None  # torch threads for CLI runs on a CPU (None: torch's default, one per core);
                                    # unless OMP_NUM_THREADS or --threads is set (benchmarks/RESULTS.md, threads)
    real: bool = True               # False: every output says "NOT A REAL RESULT"

    def k_for(self, model: str) -> int:
        """k for a backbone: v3 App. C / Table 6 give 64 for ViT-B/32 and 256 for ViT-B/16 (inconsistent: Table 7's
        68.08 used k = 128; we follow App. C and Table 6). Other models: 64. A profile's explicit k wins."""
        if self.sae.k is not None:
            return self.sae.k
        base = model.replace("-quickgelu", "")
        # ViT-L/14 (v3 Table 9, App. H) used k = 128 with a 10x SAE; pass expansion=10 for that setting.
        return {"ViT-B-16": 256, "ViT-L-14": 128}.get(base, 64)

    @property
    def banner(self) -> str:
        return TOY_BANNER if not self.real else f"profile {self.name}: {self.model} ({self.pretrained})"

    def set(self, **settings) -> "Profile":
        """A copy with some settings changed, each named by its field (`k=5`, `gamma=2.0`, `q=0.9`): every field
        name is unique across the groups. None keeps the current value (so CLI flags can be passed as they come)."""
        top = {f.name for f in fields(self)} - set(GROUPS)
        changes: dict[str, dict] = {}
        for key, value in settings.items():
            if value is None:
                continue
            if key in top:
                changes.setdefault("", {})[key] = value
            elif key in _FIELD_GROUP:
                changes.setdefault(_FIELD_GROUP[key], {})[key] = value
            else:
                raise ValueError(f"unknown profile setting {key!r}; the settings are: "
                                 f"{', '.join(sorted(top | set(_FIELD_GROUP)))}")
        new = {g: replace(getattr(self, g), **kv) for g, kv in changes.items() if g}
        return replace(self, **changes.get("", {}), **new) if changes else self


# field name -> its group; a test keeps the names unique across groups (Profile.set relies on it)
_FIELD_GROUP = {f.name: g for g in GROUPS for f in fields(Profile.__dataclass_fields__[g].default)}


PROFILES: dict[str, Profile] = {
    # The toy world: 12,000 train / 2,400 test images, d = 64. SAE: 4x expansion as in App. C (256 latents) and
    # k = 8 (k/d = 1/8; the paper's B/32 setting has 64/768 = 1/12, and k = 5 leaves too few active latents to
    # steer with); batch 256 (47 steps per epoch on 12,000 tokens), lr 2e-3 (a small batch on a CPU).
    "toy": Profile(
        name="toy", model="vs2mini-toyclip", pretrained="toy", datasets=("toy",),
        data=DataSettings(image_batch=512), sae=SAESettings(expansion=4, k=8),
        train=TrainSettings(epochs=30, batch_size=256, lr=2e-3),
        real=False, cpu_threads=1,   # small ops: a 2nd thread only adds contention
    ),
    "lite": Profile(
        name="lite", model="ViT-B-32-quickgelu", pretrained="openai", datasets=("cifar100",),
        data=DataSettings(n_train=3000, n_test=1000, image_batch=64),
        train=TrainSettings(epochs=60, batch_size=512),
        # The online book build (4 vCPU, 1,200 s per cell) cannot train all 13 SAEs of Table 8 in one cell: measured
        # on one core, a 1,000-step SAE costs ~122 CPU s at 4x/k=64, 467 at 16x/k=64, 801 at 16x/k=512: ~4,500 CPU s
        # for the 13. Five configurations (k <= 128, 4-16x wide: ~1,050 CPU s, the profile's own SAE reused) were
        # chosen by cost alone, before any lite result was seen; `full` trains all 13.
        # Likewise Table 7 (depth), from the measured unit costs (README, "The book"): 12 layer SAEs and four passes over
        # the test split ~2,300 CPU s, the three steered layers alone ~1,270. lite leaves SAE^A_REC out (it needs all
        # 12) and says so; `full` keeps it. Measured afterwards (README, "The online book"): the width/k cell 644 s,
        # the depth cell 895 s at one thread.
        tables=TableSettings(width_k_grid=((4, 64), (8, 64), (16, 64), (4, 128), (8, 128)), depth_every_layer=False),
    ),
    "full": Profile(
        name="full", model="ViT-B-32-quickgelu", pretrained="openai",
        datasets=("cifar100", "cub200", "tinyimagenet"), sae=SAESettings(bf16=True),
        gate=GateSettings(tau_datasets=("cifar100", "tinyimagenet")),
    ),
}


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Profile by name, else $VS2MINI_PROFILE, else `toy` (the one that works offline), with `overrides` set by
    field name (`Profile.set`; None keeps the profile's value)."""
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)} "
                         f"(set it with --profile or ${PROFILE_ENV})")
    return PROFILES[name].set(**overrides)


# Datasets and feature caches live in the user's cache folder: one copy for the command line and every notebook
# folder (a path relative to the working directory would download and encode everything again in each folder).
# $VS2MINI_DATA and $VS2MINI_CACHE always win.
DATA_ENV, CACHE_ENV = "VS2MINI_DATA", "VS2MINI_CACHE"


def user_cache() -> Path:
    """vs2mini's folder in the user's cache: ~/.cache/vs2mini on Linux ($XDG_CACHE_HOME/vs2mini if that is set),
    ~/Library/Caches/vs2mini on macOS, %LOCALAPPDATA%\\vs2mini\\Cache on Windows (platformdirs)."""
    from platformdirs import user_cache_path
    return user_cache_path("vs2mini", appauthor=False)


def data_root() -> Path:
    """Datasets: $VS2MINI_DATA, default <user cache>/vs2mini/data."""
    env = os.environ.get(DATA_ENV)                                          # unset or empty: default
    return Path(env).expanduser() if env else user_cache() / "data"


def cache_root() -> Path:
    """Feature caches: $VS2MINI_CACHE, default <user cache>/vs2mini/features."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else user_cache() / "features"
