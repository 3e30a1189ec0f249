"""Datasets: CIFAR-100, CUB-200-2011, Tiny-ImageNet and the generated toy world (offline), all as uint8 images.

`load_dataset(name, split)` returns an `ImageDataset` whose items are `(image, label)` with `image` a uint8
(3, H, W) RGB tensor. Fixed-size datasets keep their native size (CIFAR 32, Tiny-ImageNet 64, toy 32);
the device-side preprocessing resizes them. CUB images vary in size, so they are resized here exactly like
open_clip's eval transform (PIL bicubic Resize of the shortest side, CenterCrop, convert("RGB")).
"""
from __future__ import annotations

import hashlib
import logging
import pickle
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.datasets import CIFAR100
from torchvision.datasets.utils import extract_archive
from torchvision.transforms.functional import pil_to_tensor

from . import net, toyworld
from .paths import data_root

log = logging.getLogger(__name__)

DATASETS = ("cifar100", "cub200", "tinyimagenet", "toy", "toy-shifted")
ALIASES = {"synthetic": "toy"}      # the old offline set's name
EVAL_SPLIT = {"cifar100": "test", "cub200": "test", "tinyimagenet": "val", "toy": "test", "toy-shifted": "test"}
SPLITS = {"cifar100": ("train", "test"), "cub200": ("train", "test"),
          "tinyimagenet": ("train", "val"), "toy": ("train", "test"), "toy-shifted": ("train", "test")}
# name -> (folder created by the archive, URL, archive file name, md5)
SOURCES = {
    "cifar100": ("cifar-100-python", CIFAR100.url, CIFAR100.filename, CIFAR100.tgz_md5),
    "cub200": ("CUB_200_2011", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
               "CUB_200_2011.tgz", "97eceeb196236b17998738112f37df78"),
    "tinyimagenet": ("tiny-imagenet-200", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                     "tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de"),
}
SMOKE_HINT = ("the `toy` profile (a toy CLIP on generated images) works offline: "
              "use --profile toy or VS2MINI_PROFILE=toy")


class DatasetNotAvailable(FileNotFoundError):
    """Dataset files are missing and could not be downloaded; the message says how to get them."""


class ImageDataset(torch.utils.data.Dataset):
    """Labelled images; item i is `(image uint8 (3, H, W) RGB, label int)`.

    Images are held in memory (`images`: (N, 3, H, W) uint8) or read lazily from `files` with `loader`.
    `indices` are the positions kept from the full split (see `limit` in `load_dataset`).
    """

    def __init__(self, name: str, split: str, classnames: Sequence[str], labels: torch.Tensor, *,
                 images: torch.Tensor | None = None, files: Sequence[Path] | None = None,
                 loader: Callable[[Path], torch.Tensor] | None = None, indices: torch.Tensor | None = None,
                 limit: int | None = None, seed: int = 0, image_size: int = 32, synthetic: bool = False):
        self.name, self.split, self.classnames = name, split, list(classnames)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.images, self.files, self.loader = images, None if files is None else list(files), loader
        self.indices = torch.arange(len(self.labels)) if indices is None else indices
        self.limit, self.seed, self.image_size, self.synthetic = limit, seed, image_size, synthetic

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i] if self.images is not None else self.loader(self.files[i])
        return img, int(self.labels[i])

    def fingerprint(self) -> str:
        """Short stable cache key, e.g. `cifar100-test-all-s0-32px-n10000-1a2b3c4d`; the last part hashes the
        labels, the kept indices and the image content (`content_hash`), so changed images get new features."""
        h = hashlib.sha1(self.labels.numpy().tobytes() + self.indices.numpy().tobytes()
                         + self.content_hash().encode()).hexdigest()[:8]
        lim = "all" if self.limit is None else str(self.limit)
        return f"{self.name}-{self.split}-{lim}-s{self.seed}-{self.image_size}px-n{len(self)}-{h}"

    def content_hash(self, n_sampled: int = 64) -> str:
        """What determines the pixels: a SHA-1 of the in-memory images; for files, their paths, sizes and
        modification times plus the full bytes of `n_sampled` evenly spaced files (reading every file of a
        large dataset on each start would cost more than it saves). Computed once per dataset object."""
        if getattr(self, "_content_hash", None) is None:
            h = hashlib.sha1()
            if self.images is not None:
                h.update(np.ascontiguousarray(self.images.numpy()).tobytes())
            for f in self.files or []:
                st = f.stat()
                h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            if self.files:
                step = max(1, len(self.files) // n_sampled)
                for f in self.files[::step][:n_sampled]:
                    h.update(f.read_bytes())
            self._content_hash = h.hexdigest()
        return self._content_hash

    def __repr__(self) -> str:
        return f"ImageDataset({self.fingerprint()}, {len(self.classnames)} classes)"


def _subset(n: int, limit: int | None, seed: int) -> torch.Tensor:
    """Indices (sorted) of a seeded random subset of `limit` out of `n` (all if limit is None or >= n)."""
    if limit is None or limit >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:limit].sort().values


def download_and_extract_archive(url: str, download_root: str | Path, filename: str | None = None,
                                 md5: str | None = None, timeout: float | None = None) -> Path:
    """torchvision's helper of the same name, made safe: connect/read time-outs (torchvision's urlopen has none,
    so a silent server hangs it forever), a unique temporary file, the length and md5 checked before the archive
    takes its name. An archive already present with the right md5 is not fetched again."""
    root = Path(download_root)
    archive = root / (filename or url.rsplit("/", 1)[-1])
    if not (archive.is_file() and md5 and net.md5sum(archive) == md5):
        net.download(url, archive, md5, timeout)
    try:
        extract_archive(str(archive), str(root))
    except Exception as e:        # tarfile/zipfile/EOF errors: a damaged archive that passed no md5 check
        raise net.DownloadError(f"{archive}: cannot extract ({type(e).__name__}: {e}); delete it and retry") from e
    return archive


def _ensure(name: str, root: Path, required: Sequence[str], download: bool) -> Path:
    """Folder of dataset `name` under `root`; downloads the archive if `required` files are missing."""
    folder, url, filename, md5 = SOURCES[name]
    base = root / folder
    missing = lambda: [base / r for r in required if not (base / r).exists()]  # noqa: E731
    if not missing():
        return base
    why = "download=False"
    if download:
        try:
            download_and_extract_archive(url, download_root=str(root), filename=filename, md5=md5)
            why = "downloaded, but the archive did not contain them"
        except Exception as e:  # no internet, bad md5, broken archive: all end in the same advice
            why = f"download failed: {type(e).__name__}: {e}"
        if not missing():
            return base
    raise DatasetNotAvailable(
        f"{name}: dataset files not found at {missing()[0]} ({why}). Fetch the archive manually from {url} "
        f"and extract it into {root} so that {base} exists (or point $VS2MINI_DATA at the folder holding it). "
        f"Note: {SMOKE_HINT}.")


def _table(path: Path, ncols: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a whitespace-separated text file; ValueError naming file:line if malformed."""
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            fields = line.split(maxsplit=ncols - 1)
            if len(fields) != ncols:
                raise ValueError(f"{path}:{lineno}: expected {ncols} fields, got {line!r}")
            rows.append((lineno, fields))
    return rows


def _int(path: Path, lineno: int, s: str, lo: int, hi: int) -> int:
    """int(s) checked to lie in [lo, hi]; ValueError naming file:line otherwise."""
    try:
        v = int(s)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: {s!r} is not an integer") from None
    if not lo <= v <= hi:
        raise ValueError(f"{path}:{lineno}: value {v} out of range [{lo}, {hi}]")
    return v


class BadImageFile(ValueError):
    """An image file of a dataset cannot be decoded; the message names the file."""


def _load_image(path: Path, size: int | None = None) -> torch.Tensor:
    """uint8 (3, H, W) RGB at native size, or (3, size, size) via open_clip's eval transform
    (PIL bicubic Resize of the shortest side, CenterCrop, convert("RGB")). BadImageFile naming the file if it
    is unreadable, truncated, empty or not an image."""
    try:
        with Image.open(path) as im:
            if size is not None:
                im = T.CenterCrop(size)(T.Resize(size, interpolation=T.InterpolationMode.BICUBIC)(im))
            return pil_to_tensor(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        hint = (" It is a macOS AppleDouble metadata file: delete every ._* file (find DIR -name '._*' -delete)."
                if Path(path).name.startswith("._") else "")
        raise BadImageFile(f"{path}: not a readable image ({type(e).__name__}: {e}); re-extract the dataset "
                           f"archive or delete the file and its line in the dataset's lists.{hint}") from None


def _cifar_names(root: Path, download: bool) -> tuple[list[str], list[str]]:
    base = _ensure("cifar100", root, ["meta"], download)
    try:
        with open(base / "meta", "rb") as f:
            raw = [n.decode() for n in pickle.load(f, encoding="bytes")[b"fine_label_names"]]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{base / 'meta'}: not a CIFAR-100 meta pickle with fine_label_names "
                         f"({type(e).__name__}: {e})") from None
    _unique(raw, base / "meta", "class name")
    return [n.replace("_", " ") for n in raw], raw  # OpenAI CLIP convention: aquarium_fish -> aquarium fish


def _cifar100(root, split, download, limit, seed, **_) -> ImageDataset:
    base = _ensure("cifar100", root, ["meta", split], download)
    names, raw = _cifar_names(root, download)
    path = base / split
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        raw_labels, data = d[b"fine_labels"], np.asarray(d[b"data"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a CIFAR-100 python pickle with fine_labels and data ({type(e).__name__}: "
                         f"{e}); re-extract {SOURCES['cifar100'][1]}") from None
    labels = np.asarray(raw_labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: fine_labels must be a list of integers, got dtype {labels.dtype}, "
                         f"shape {labels.shape}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: data must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    labels = torch.as_tensor(labels, dtype=torch.int64)
    _check_split("cifar100", split, labels, len(data), len(names), path, "fine_labels")
    idx = _subset(len(labels), limit, seed)
    images = torch.from_numpy(data).reshape(-1, 3, 32, 32)[idx]
    ds = ImageDataset("cifar100", split, names, labels[idx], images=images, indices=idx, limit=limit,
                      seed=seed, image_size=32)
    ds.raw_classnames = raw
    return ds


def _cub_names(base: Path) -> list[str]:
    """classes.txt "001.Black_footed_Albatross" -> "Black footed Albatross"."""
    rows = _table(base / "classes.txt", 2)
    _unique([raw for _, (_, raw) in rows], base / "classes.txt", "class")
    for k, (lineno, (cid, _)) in enumerate(rows):
        _int(base / "classes.txt", lineno, cid, k + 1, k + 1)  # ids must be 1..C in order
    return [raw.split(".", 1)[-1].replace("_", " ") for _, (_, raw) in rows]


def _cub200(root, split, download, limit, seed, image_size=224, **_) -> ImageDataset:
    base = _ensure("cub200", root, ["images.txt", "classes.txt", "image_class_labels.txt",
                                    "train_test_split.txt"], download)
    names = _cub_names(base)
    rows = _table(base / "images.txt", 2)
    paths = {_int(base / "images.txt", ln, i, 1, 2**62): p for ln, (i, p) in rows}
    _unique([i for _, (i, _) in rows], base / "images.txt", "image id")
    tables = {}
    for fname, lo, hi in (("image_class_labels.txt", 1, len(names)), ("train_test_split.txt", 0, 1)):
        p = base / fname
        tables[fname] = {_int(p, ln, i, 1, 2**62): _int(p, ln, v, lo, hi) for ln, (i, v) in _table(p, 2)}
        lost = sorted(set(paths) - set(tables[fname]))
        if lost:
            raise ValueError(f"{p}: no line for image id {lost[0]} (listed in images.txt)")
    empty = sorted(set(range(1, len(names) + 1)) - {tables["image_class_labels.txt"][i] for i in paths})
    if empty:
        raise ValueError(f"{base / 'image_class_labels.txt'}: class {empty[0]} ({names[empty[0] - 1]}) has no "
                         "images; the lists are damaged, re-extract the archive")
    want = 1 if split == "train" else 0
    ids = [i for i in sorted(paths) if tables["train_test_split.txt"][i] == want]
    if not ids:
        raise ValueError(f"cub200: the {split} split in {base / 'train_test_split.txt'} has no images")
    idx = _subset(len(ids), limit, seed)
    ids = [ids[j] for j in idx.tolist()]
    files = [base / "images" / paths[i] for i in ids]
    labels = torch.tensor([tables["image_class_labels.txt"][i] - 1 for i in ids], dtype=torch.int64)
    _check_files(files, "cub200", root)
    return ImageDataset("cub200", split, names, labels, files=files, loader=partial(_load_image, size=image_size),
                        indices=idx, limit=limit, seed=seed, image_size=image_size)


def _check_files(files: Sequence[Path], name: str, root: Path, what: str = "image file") -> None:
    """Up front, before any worker reads them: every file exists and is not empty (one stat each)."""
    gone = [f for f in files if not (f.is_dir() if what == "folder" else f.is_file())]
    if gone:
        raise DatasetNotAvailable(f"{name}: {len(gone)} {what}(s) missing, e.g. {gone[0]}; the extracted "
                                  f"archive looks incomplete: re-extract {SOURCES[name][1]} into {root}. "
                                  f"Note: {SMOKE_HINT}.")
    if what != "folder":
        empty = [f for f in files if f.stat().st_size == 0]
        if empty:
            raise BadImageFile(f"{name}: {len(empty)} image file(s) are empty (0 bytes), e.g. {empty[0]}; the "
                               f"extraction was interrupted: re-extract {SOURCES[name][1]} into {root}")


def _check_split(name: str, split: str, labels: torch.Tensor, n_images: int, n_classes: int, where: Path,
                 field: str = "labels") -> None:
    """Label count equals image count, labels in [0, C), the split is not empty."""
    if len(labels) != n_images:
        raise ValueError(f"{where}: {len(labels)} labels for {n_images} images; the file is damaged, re-extract it")
    if n_images == 0:
        raise ValueError(f"{name}: the {split} split in {where} has no images")
    bad = ((labels < 0) | (labels >= n_classes)).nonzero()
    if len(bad):
        raise ValueError(f"{where}: {field}[{int(bad[0])}] = {int(labels[bad[0]])} out of range [0, {n_classes - 1}]")


def _unique(values: Sequence[str], where: Path, what: str) -> None:
    if not values:
        raise ValueError(f"{where} is empty: it must list the {what}s; re-extract the dataset archive")
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{where}: duplicate {what} {v!r}")
        seen.add(v)


def _tiny_names(base: Path) -> tuple[list[str], list[str]]:
    """(wnids in label order, clean names). Clean name = first synonym in words.txt; where two classes share
    it, both use their first two synonyms joined by ", " (and the wnid is appended if that still clashes).
    The paper does not state its wnid -> name mapping; this is our documented default."""
    wnids = [w.strip() for w in (base / "wnids.txt").read_text().splitlines() if w.strip()]
    _unique(wnids, base / "wnids.txt", "wnid")
    words = {}
    for lineno, line in enumerate((base / "words.txt").read_text().splitlines(), 1):
        if line.strip():
            if "\t" not in line:
                raise ValueError(f"{base / 'words.txt'}:{lineno}: expected '<wnid>\\t<synonyms>', got {line!r}")
            w, syn = line.split("\t", 1)
            words[w.strip()] = [s.strip() for s in syn.split(",") if s.strip()]
    lost = [w for w in wnids if not words.get(w)]
    if lost:
        raise ValueError(f"{base / 'words.txt'}: no synonyms for wnid {lost[0]} (listed in wnids.txt)")
    names = [words[w][0] for w in wnids]
    names = [", ".join(words[w][:2]) if names.count(n) > 1 else n for w, n in zip(wnids, names)]
    names = [f"{n} ({w})" if names.count(n) > 1 else n for w, n in zip(wnids, names)]
    return wnids, names


def _tinyimagenet(root, split, download, limit, seed, **_) -> ImageDataset:
    base = _ensure("tinyimagenet", root, ["wnids.txt", "words.txt", "val/val_annotations.txt"], download)
    wnids, names = _tiny_names(base)
    lab = {w: k for k, w in enumerate(wnids)}
    files, labels = [], []
    if split == "train":
        for w in wnids:
            _check_files([base / "train" / w / "images"], "tinyimagenet", root, what="folder")
            listed = [p for p in (base / "train" / w / "images").iterdir() if p.suffix.upper() == ".JPEG"]
            found = sorted(p for p in listed if not p.name.startswith("._"))
            if len(found) < len(listed):     # macOS AppleDouble metadata next to the images: not images
                log.warning("tinyimagenet: skipped %d macOS '._*' metadata file(s) in %s", len(listed) - len(found),
                            base / "train" / w / "images")
            if not found:
                raise ValueError(f"tinyimagenet: class {w} has no images in {base / 'train' / w / 'images'}; "
                                 "re-extract the archive")
            files, labels = files + found, labels + [lab[w]] * len(found)
    else:
        ann = base / "val" / "val_annotations.txt"
        for lineno, line in enumerate(ann.read_text().splitlines(), 1):
            f = [x.strip() for x in line.split("\t")]
            if len(f) < 2 or f[1] not in lab:
                if line.strip():
                    raise ValueError(f"{ann}:{lineno}: expected '<file>\\t<wnid from wnids.txt>\\t...', got {line!r}")
                continue
            path = base / "val" / "images" / f[0]
            if not path.exists():   # the common "val reorganised into class folders" layout
                alt = base / "val" / f[1] / "images" / f[0]
                path = alt if alt.exists() else path
            files.append(path)
            labels.append(lab[f[1]])
    if not files:
        raise ValueError(f"tinyimagenet: the {split} split under {base} has no images")
    idx = _subset(len(files), limit, seed)
    files = [files[j] for j in idx.tolist()]
    _check_files(files, "tinyimagenet", root)
    return ImageDataset("tinyimagenet", split, names, torch.tensor(labels, dtype=torch.int64)[idx], files=files,
                        loader=_load_image, indices=idx, limit=limit, seed=seed, image_size=64)


def _toy(root, split, download, limit, seed, domain="base", **_) -> ImageDataset:
    """The toy world (vs2mini.toyworld): image i depends only on (seed, domain, split, i), so `limit` gives a prefix
    (still class-balanced up to one image per class). Captions are kept in `.captions`."""
    images, labels, captions = toyworld.render(domain, split, limit, seed=seed)
    name = "toy" if domain == "base" else f"toy-{domain}"
    ds = ImageDataset(name, split, toyworld.CLASSNAMES, torch.from_numpy(labels), images=torch.from_numpy(images),
                      limit=limit, seed=seed, image_size=toyworld.SIZE, synthetic=True)
    ds.captions = captions
    return ds


_LOADERS = {"cifar100": _cifar100, "cub200": _cub200, "tinyimagenet": _tinyimagenet, "toy": _toy,
            "toy-shifted": partial(_toy, domain="shifted")}


def _toy_resolution(root, split, download, limit, seed, px: int, **_) -> ImageDataset:
    """A resolution-shift domain of the toy world (vs2mini.toyworld, "resolution-shift domains"): the "base" images
    rendered at 32 px, area-downsampled to `px` and returned at that size (the model's preprocessing upsamples)."""
    images, labels, captions = toyworld.render("base", split, limit, seed=seed)
    ds = ImageDataset(toyworld.resolution_dataset(px), split, toyworld.CLASSNAMES, torch.from_numpy(labels),
                      images=torch.from_numpy(toyworld.downsample(images, px)), limit=limit, seed=seed,
                      image_size=px, synthetic=True)
    ds.captions = captions
    return ds


# the toy world's datasets: "toy" (32 px, in-domain), "toy-shifted" (backgrounds), and the resolution domains
TOY_RESOLUTION_DATASETS = tuple(toyworld.resolution_dataset(px) for px in toyworld.RESOLUTIONS)
TOY_DATASETS = ("toy", "toy-shifted") + TOY_RESOLUTION_DATASETS
for _px, _name in zip(toyworld.RESOLUTIONS, TOY_RESOLUTION_DATASETS):
    DATASETS += (_name,)
    SPLITS[_name], EVAL_SPLIT[_name] = ("train", "test"), "test"
    _LOADERS[_name] = partial(_toy_resolution, px=_px)


# The six shifted datasets of the paper's Table 3 (vs2mini/ood_datasets.py, through torchvision's loaders).
from . import ood_datasets as _ood  # noqa: E402
DATASETS += _ood.OOD_DATASETS
for _name in _ood.OOD_DATASETS:
    SPLITS[_name], EVAL_SPLIT[_name] = _ood.SPLITS, "test"
    _LOADERS[_name] = partial(_ood.load_ood, _name)


def _check(name: str, split: str | None = None) -> str:
    """The canonical name of dataset `name` (aliases resolved); ValueError for an unknown name or split."""
    name = ALIASES.get(name, name)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split is not None and split not in SPLITS[name]:
        hint = ' (its "test" split has no labels; use split="val", as the paper does)' \
            if name == "tinyimagenet" and split == "test" else ""
        raise ValueError(f"unknown split {split!r} for {name}; valid splits: {SPLITS[name]}{hint}")
    return name


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, *, download: bool = True,
                 limit: int | None = None, seed: int = 0, image_size: int = 224) -> ImageDataset:
    """Dataset `name` (one of `DATASETS`; "synthetic" is an old name of "toy"), split "train" or `EVAL_SPLIT[name]`.

    root: data folder (default `paths.data_root()`). limit: keep a seeded random subset of that many images
    (in index order); for the toy datasets ("toy", "toy-shifted", "toy-16px", ...) it is how many images are generated (a prefix; default
    12,000 train / 2,400 test) and `seed` is the world's seed. image_size: CUB output side (other datasets keep
    their native size).
    Missing files and no download -> `DatasetNotAvailable` (a FileNotFoundError) saying how to get them.
    """
    name = _check(name, split)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")
    root = Path(root).expanduser() if root is not None else data_root()
    return _LOADERS[name](root, split, download, limit, seed, image_size=image_size)


def superclasses(name: str) -> torch.Tensor | None:
    """(C,) super-class index per class for datasets that define super-classes (the toy world), else None."""
    return torch.from_numpy(toyworld.CLASS_SUPER) if _check(name) in TOY_DATASETS else None


def classnames(name: str, root: str | Path | None = None, *, download: bool = True) -> list[str]:
    """Clean class names of `name` (index = label) without loading images."""
    name = _check(name)
    root = Path(root).expanduser() if root is not None else data_root()
    if name in TOY_DATASETS:
        return list(toyworld.CLASSNAMES)
    if name == "cifar100":
        return _cifar_names(root, download)[0]
    if name == "cub200":
        return _cub_names(_ensure("cub200", root, ["classes.txt"], download))
    if name in _ood.OOD_DATASETS:
        return load_dataset(name, "test", root, download=download, limit=0).classnames
    return _tiny_names(_ensure("tinyimagenet", root, ["wnids.txt", "words.txt"], download))[1]
