"""The six shifted datasets of the paper's reliability study (paper v3 §4.3, Table 3), through torchvision's loaders.

FGVC-Aircraft, Food-101, Flowers-102, Caltech-101, SUN397 and EuroSAT, each as an `ImageDataset` of uint8
images resized like open_clip's eval transform (as for CUB). `load_dataset("food101", "test")`
(vs2mini.data.registry) reaches them.

Splits (the paper does not state them): torchvision's own splits where the dataset has them (Aircraft: "trainval" as
train and "test"; Food-101 and Flowers-102: "train" and "test"); Caltech-101, SUN397 and EuroSAT have none, so we
take a seeded 80 / 20 split of each (`SPLIT_SEED`, the same for every run). Class names: the datasets' own, with
"_" and "/" turned into spaces and EuroSAT's CamelCase split into words (CLIP's hand-curated names are not used).
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch

from .images import OFFLINE_HINT, DatasetNotAvailable, ImageDataset, _subset, load_image

TORCHVISION = {   # our name -> (torchvision class, folder it expects under the root, where the archive comes from)
    "aircraft": ("FGVCAircraft", "fgvc-aircraft-2013b",
                 "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"),
    "food101": ("Food101", "food-101", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"),
    "flowers102": ("Flowers102", "flowers-102", "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
    "caltech101": ("Caltech101", "caltech101/101_ObjectCategories",
                   "https://data.caltech.edu/records/mzrjq-6wc02 (caltech-101.zip)"),
    "sun397": ("SUN397", "SUN397", "https://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz"),
    "eurosat": ("EuroSAT", "eurosat/2750", "https://huggingface.co/datasets/torchgeo/eurosat (EuroSAT.zip)"),
}
OOD_DATASETS = tuple(TORCHVISION)
SPLITS = ("train", "test")
SPLIT_SEED = 0
TRAIN_FRACTION = 0.8


def _clean(name: str) -> str:
    if re.fullmatch(r"[A-Za-z]+", name) and name != name.lower() and name != name.upper():
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)          # AnnualCrop -> Annual Crop
    return re.sub(r"\s+", " ", name.replace("_", " ").replace("/", " ")).strip()


def _open(name: str, root: Path, split: str, download: bool):
    """The torchvision dataset object; DatasetNotAvailable (saying how to get it) when its files are missing."""
    import torchvision.datasets as tvd

    cls_name, folder, url = TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    kw = {"aircraft": {"split": "trainval" if split == "train" else "test"},
          "food101": {"split": split}, "flowers102": {"split": split}}.get(name, {})
    tried = "download=False"
    for dl in ([False, True] if download else [False]):              # never download what is already there
        try:
            return cls(str(root), download=dl, **kw)
        except Exception as e:                                        # not found, no internet, bad archive
            tried = "not found" if not dl else f"download failed: {type(e).__name__}: {e}"
    raise DatasetNotAvailable(
        f"{name}: dataset files not found at {root / folder} ({tried}). torchvision.datasets.{cls_name} downloads it "
        f"with download=True where there is internet; otherwise fetch it from {url} and extract it into {root} so "
        f"that {root / folder} exists (or point $VS2MINI_DATA at the folder holding it). Note: {OFFLINE_HINT}.")


def _files_labels_names(name: str, ds) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, labels and class names of a torchvision dataset object."""
    if name == "caltech101":
        base = Path(ds.root) / "101_ObjectCategories"
        files = [base / ds.categories[y] / f"image_{i:04d}.jpg" for i, y in zip(ds.index, ds.y)]
        return files, list(ds.y), [_clean(c) for c in ds.categories]
    if name == "eurosat":
        return [Path(p) for p, _ in ds.samples], [y for _, y in ds.samples], [_clean(c) for c in ds.classes]
    return [Path(p) for p in ds._image_files], list(ds._labels), [_clean(c) for c in ds.classes]


def _seeded_split(n: int, split: str) -> torch.Tensor:
    """Indices of our fixed 80 / 20 train / test split of n images (datasets without an official split)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = int(round(TRAIN_FRACTION * n))
    return (perm[:cut] if split == "train" else perm[cut:]).sort().values


def load_ood(name: str, root: Path, split: str, download: bool, limit: int | None, seed: int,
             image_size: int = 224, **_):
    """`load_dataset`'s loader for the six OOD datasets: an ImageDataset with lazily loaded images."""
    files, labels, names = _files_labels_names(name, _open(name, Path(root), split, download))
    if name in ("caltech101", "sun397", "eurosat"):
        keep = _seeded_split(len(files), split).tolist()
        files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    idx = _subset(len(files), limit, seed)
    files = [files[j] for j in idx.tolist()]
    labels = torch.tensor(labels, dtype=torch.int64)[idx] if labels else torch.zeros(0, dtype=torch.int64)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetNotAvailable(f"{name}: {len(missing)} image file(s) missing, e.g. {missing[0]}; the extracted "
                                  f"archive looks incomplete: re-extract {TORCHVISION[name][2]} into {root}.")
    return ImageDataset(name, split, names, labels, files=files, loader=partial(load_image, size=image_size),
                        indices=idx, limit=limit, seed=seed, image_size=image_size)
