"""Labelled uint8 image datasets and image decoding: `ImageDataset`, `load_image`, the errors a dataset raises.

An `ImageDataset` item is `(image, label)` with `image` a uint8 (3, H, W) RGB tensor. Fixed-size datasets keep their
native size (CIFAR 32, Tiny-ImageNet 64, toy 32); the device-side preprocessing resizes them. Files of varying size
(CUB) are resized here exactly like open_clip's eval transform (PIL bicubic Resize of the shortest side,
CenterCrop, convert("RGB")).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms.functional import pil_to_tensor

OFFLINE_HINT = ("the `toy` profile (a toy CLIP on generated images) works offline: "
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


class BadImageFile(ValueError):
    """An image file of a dataset cannot be decoded; the message names the file."""


def load_image(path: Path, size: int | None = None) -> torch.Tensor:
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


