"""The dataset registry: every dataset vs2mini knows, its splits, and `load_dataset` / `classnames` / `superclasses`.

`load_dataset(name, split)` returns an `ImageDataset` (vs2mini.data.images) whose items are `(image, label)` with
`image` a uint8 (3, H, W) RGB tensor: CIFAR-100, CUB-200-2011 and Tiny-ImageNet (vs2mini.data.archives), the
generated toy world (vs2mini.data.toyworld, offline) and the six shifted datasets of Table 3 (vs2mini.data.ood).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from ..config import data_root
from . import ood, toyworld
from .archives import cifar_names, cub_names, ensure, load_cifar100, load_cub200, load_tinyimagenet, \
    tiny_names
from .images import ImageDataset

DATASETS = ("cifar100", "cub200", "tinyimagenet", "toy", "toy-shifted")
EVAL_SPLIT = {"cifar100": "test", "cub200": "test", "tinyimagenet": "val", "toy": "test", "toy-shifted": "test"}
SPLITS = {"cifar100": ("train", "test"), "cub200": ("train", "test"),
          "tinyimagenet": ("train", "val"), "toy": ("train", "test"), "toy-shifted": ("train", "test")}

def _toy(root, split, download, limit, seed, domain="base", **_) -> ImageDataset:
    """The toy world (vs2mini.data.toyworld): image i depends only on (seed, domain, split, i), so `limit` gives a
    prefix (still class-balanced up to one image per class). Captions are kept in `.captions`."""
    images, labels, captions = toyworld.render(domain, split, limit, seed=seed)
    name = "toy" if domain == "base" else f"toy-{domain}"
    ds = ImageDataset(name, split, toyworld.CLASSNAMES, torch.from_numpy(labels), images=torch.from_numpy(images),
                      limit=limit, seed=seed, image_size=toyworld.SIZE, synthetic=True)
    ds.captions = captions
    return ds


_LOADERS = {"cifar100": load_cifar100, "cub200": load_cub200, "tinyimagenet": load_tinyimagenet, "toy": _toy,
            "toy-shifted": partial(_toy, domain="shifted")}


# The six shifted datasets of the paper's Table 3 (vs2mini/data/ood.py, through torchvision's loaders).
DATASETS += ood.OOD_DATASETS
for _name in ood.OOD_DATASETS:
    SPLITS[_name], EVAL_SPLIT[_name] = ood.SPLITS, "test"
    _LOADERS[_name] = partial(ood.load_ood, _name)


def check_name(name: str, split: str | None = None) -> str:
    """`name` if it is a known dataset (and `split` one of its splits); ValueError naming the choices otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split is not None and split not in SPLITS[name]:
        hint = ' (its "test" split has no labels; use split="val", as the paper does)' \
            if name == "tinyimagenet" and split == "test" else ""
        raise ValueError(f"unknown split {split!r} for {name}; valid splits: {SPLITS[name]}{hint}")
    return name


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, *, download: bool = True,
                 limit: int | None = None, seed: int = 0, image_size: int = 224) -> ImageDataset:
    """Dataset `name` (one of `DATASETS`), split "train" or `EVAL_SPLIT[name]`.

    root: data folder (default `config.data_root()`). limit: keep a seeded random subset of that many images
    (in index order); for "toy"/"toy-shifted" it is how many images are generated (a prefix; default
    12,000 train / 2,400 test) and `seed` is the world's seed. image_size: CUB output side (other datasets keep
    their native size).
    Missing files and no download -> `DatasetNotAvailable` (a FileNotFoundError) saying how to get them.
    """
    name = check_name(name, split)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")
    root = Path(root).expanduser() if root is not None else data_root()
    return _LOADERS[name](root, split, download, limit, seed, image_size=image_size)


def superclasses(name: str) -> torch.Tensor | None:
    """(C,) super-class index per class for datasets that define super-classes (the toy world), else None."""
    return torch.from_numpy(toyworld.CLASS_SUPER) if check_name(name) in ("toy", "toy-shifted") else None


def classnames(name: str, root: str | Path | None = None, *, download: bool = True) -> list[str]:
    """Clean class names of `name` (index = label) without loading images."""
    name = check_name(name)
    root = Path(root).expanduser() if root is not None else data_root()
    if name in ("toy", "toy-shifted"):
        return list(toyworld.CLASSNAMES)
    if name == "cifar100":
        return cifar_names(root, download)[0]
    if name == "cub200":
        return cub_names(ensure("cub200", root, ["classes.txt"], download))
    if name in ood.OOD_DATASETS:
        return load_dataset(name, "test", root, download=download, limit=0).classnames
    return tiny_names(ensure("tinyimagenet", root, ["wnids.txt", "words.txt"], download))[1]
