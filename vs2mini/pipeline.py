"""The shared set-up every command and notebook starts from: model, data, cached features, zero-shot head.

    setup = load_setup("toy")                    # or "lite" / "full", or $VS2MINI_PROFILE
    acc = setup.accuracy(setup.test.cls)         # CLIP zero-shot top-1 from CLS tokens
    sae, history = setup.train_sae()             # the profile's SAE on the train CLS tokens
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import torch

from .clip.features import Features, cached_features, cls_to_logits
from .clip.models import Clip, load_clip, zeroshot_head
from .config import TOY_BANNER, Profile, get_profile
from .data.images import ImageDataset
from .data.registry import EVAL_SPLIT, check_name, load_dataset
from .method import metrics, steer
from .method.sae import TopKSAE
from .method.train import train_sae


@dataclass
class Setup:
    profile: Profile
    clip: Clip
    dataset: str
    classnames: list[str]
    train: Features          # train split: bank for SAE training and VS2++ retrieval
    test: Features           # evaluation split (v3 Table 9: CIFAR test, CUB test, Tiny-ImageNet val)
    head: torch.Tensor       # (C, D) zero-shot text head
    train_set: ImageDataset
    test_set: ImageDataset

    @property
    def real(self) -> bool:
        """False when the numbers come from random weights, the toy CLIP or generated data."""
        return self.profile.real and self.clip.real and not self.test_set.synthetic

    @property
    def banner(self) -> str:
        return self.profile.banner if self.real else TOY_BANNER

    def with_settings(self, **settings) -> "Setup":
        """The same model, data and features under other profile settings (`Profile.set`: `gamma=2.0`, `q=0.99`)."""
        return replace(self, profile=self.profile.set(**settings))

    def logits(self, cls: torch.Tensor) -> torch.Tensor:
        """cls: (N, d) CLS tokens (steered or not) -> (N, C) zero-shot logits on the CPU."""
        return cls_to_logits(self.clip, cls, self.head).cpu()

    def accuracy(self, cls: torch.Tensor, labels: torch.Tensor | None = None) -> float:
        """Top-1 (%) of CLS tokens against `labels` (default: the test labels)."""
        return metrics.top1(self.logits(cls), self.test.labels if labels is None else labels)

    def per_class(self, cls: torch.Tensor) -> torch.Tensor:
        """Per-class top-1 (%) of test CLS tokens, (C,)."""
        return metrics.per_class_accuracy(self.logits(cls), self.test.labels, len(self.classnames))

    @torch.no_grad()
    def sweep_vs2(self, sae: TopKSAE, gammas, lams) -> torch.Tensor:
        """Test top-1 of VS2 over a grid: (len(gammas), len(lams))."""
        x = self.test.cls.to(self.clip.device)
        return torch.tensor([[self.accuracy(steer.vs2(x, sae, g, l)) for l in lams] for g in gammas])

    def train_kwargs(self, **overrides) -> dict:
        """The profile's `train_sae` keywords for this backbone (budget, held-out slice, lr, PASS variant)."""
        p = self.profile
        tr = p.train
        kw = dict(expansion=p.sae.expansion, k=p.k_for(self.clip.name), epochs=tr.epochs, min_steps=tr.min_steps,
                  holdout=tr.holdout, patience=tr.patience, batch_size=tr.batch_size, lr=tr.lr, bf16=p.sae.bf16,
                  pass_variant=p.pass_.variant, prune_below=p.sae.prune_below, seed=tr.seed, device=self.clip.device)
        kw.update(overrides)
        return kw

    def train_sae(self, labels: torch.Tensor | None = None, w_aux: float = 0.0, progress: bool = True,
                  pass_variant: str | None = None, **overrides) -> tuple[TopKSAE, dict]:
        """Train the profile's SAE on train CLS tokens (PASS when labels and w_aux are given; `pass_variant`
        defaults to the profile's). `method.train.summary(history)` gives steps and train / held-out FVU."""
        if pass_variant is not None:
            overrides["pass_variant"] = pass_variant
        return train_sae(self.train.cls, labels=labels, w_aux=w_aux, progress=progress,
                         **self.train_kwargs(**overrides))


def load_setup(profile: str | Profile | None = None, dataset: str | None = None, *, model: str | None = None,
               pretrained: str | None = "", device: str | None = None, templates: str | None = None,
               progress: bool = True) -> Setup:
    """Load the CLIP model, the dataset's train and eval splits, their (cached) features and the text head.
    `pretrained=""` means the profile's choice; None means random weights."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    dataset = check_name(dataset or p.datasets[0])        # fail before loading a model
    clip = load_clip(model or p.model, p.pretrained if pretrained == "" else pretrained, device)
    if p.name == "full" and clip.device.type == "cpu":
        warnings.warn("the 'full' profile on a CPU extracts features for every image of the full splits and takes "
                      "hours; use a GPU, or --profile lite for a CPU-sized run", stacklevel=2)
    train_set = load_dataset(dataset, "train", limit=p.data.n_train)
    test_set = load_dataset(dataset, EVAL_SPLIT.get(dataset, "test"), limit=p.data.n_test)
    kw = dict(batch_size=p.data.image_batch, progress=progress, amp=p.data.feature_amp)
    train, test = cached_features(clip, train_set, **kw), cached_features(clip, test_set, **kw)
    head = zeroshot_head(clip, test_set.classnames, templates or p.data.templates)
    return Setup(p, clip, dataset, list(test_set.classnames), train, test, head, train_set, test_set)
