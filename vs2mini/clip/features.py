"""Feature extraction: in one pass, the final-layer CLS token before `ln_post` (N, d) and the image embedding (N, D).

The CLS token is where the SAE and the steering act (paper v3 §4: the final-layer CLS token; App. C: the encoder layer's output). `cls_to_logits` maps (steered) CLS tokens through
`ln_post`, the projection, normalisation and the text head, so methods are evaluated without re-encoding images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import cache
from ..config import cache_root
from .models import Clip
from .preprocess import preprocess_batch, preprocess_config

FEATURES_VERSION = 1


@dataclass
class Features:
    cls: torch.Tensor      # (N, d) float32, final CLS token before ln_post
    emb: torch.Tensor      # (N, D) float32, model.encode_image output (not normalised)
    labels: torch.Tensor   # (N,) int64

    def to(self, device) -> "Features":
        return Features(self.cls.to(device), self.emb.to(device), self.labels.to(device))


def _batches(dataset, batch_size: int, num_workers: int):
    """uint8 image batches; datasets that hold a uint8 tensor in `.images` are sliced without a DataLoader."""
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        if torch.cuda.is_available():
            images = images.pin_memory()   # lets the host-to-device copies run asynchronously
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         pin_memory=torch.cuda.is_available())
    it, start = iter(loader), 0
    while True:
        failed = False
        try:
            imgs, _ = next(it)
        except StopIteration:
            return
        except Exception:
            failed = True
        if failed:
            # A worker's error arrives wrapped in its whole traceback. Stop the workers now (left to the garbage
            # collector, their shutdown later stalls for seconds), then read the failing batch again here, so the
            # user sees the dataset's own one-line message (it names the file), not the worker's traceback.
            getattr(it, "_shutdown_workers", lambda: None)()
            del it
            for i in range(start, min(start + batch_size, len(dataset))):
                dataset[i]
            raise RuntimeError(f"reading images {start}..{start + batch_size - 1} failed in a DataLoader worker "
                               "but not in the main process; retry with num_workers=0")
        start += len(imgs)
        yield imgs


@torch.no_grad()
def encode_images(clip: Clip, images: torch.Tensor, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """images: uint8 (B, 3, H, W) -> (cls (B, d), emb (B, D)) in float32, from one forward pass.
    `amp` runs CLIP under bf16 autocast (faster on a GPU; off by default so features match fp32 CLIP)."""
    visual = clip.model.visual
    captured = {}

    def hook(_module, inputs):
        h = inputs[0]
        captured["cls"] = h[:, 0] if h.ndim == 3 else h   # (B, L, d) -> CLS token

    x = preprocess_batch(images.to(clip.device, non_blocking=True), preprocess_config(clip.model))
    handle = visual.ln_post.register_forward_pre_hook(hook)
    try:
        with torch.autocast(clip.device.type, dtype=torch.bfloat16, enabled=amp):
            emb = clip.model.encode_image(x)
    finally:
        handle.remove()
    return captured["cls"].float(), emb.float()


def extract_features(clip: Clip, dataset, batch_size: int = 256, num_workers: int | None = None,
                     progress: bool = True, amp: bool = False) -> Features:
    """Encode every image of `dataset` (uint8 (3, H, W), label) once; returns features on the CPU."""
    num_workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
    cls, emb = [], []
    n_batches = -(-len(dataset) // batch_size)
    for imgs in tqdm(_batches(dataset, batch_size, num_workers), total=n_batches, disable=not progress,
                     desc=f"features {getattr(dataset, 'name', '')}"):
        c, e = encode_images(clip, imgs, amp)
        cls.append(c)                      # stay on the device: one transfer at the end, no per-batch sync
        emb.append(e)
    labels = torch.as_tensor(dataset.labels, dtype=torch.long)
    return Features(torch.cat(cls).cpu(), torch.cat(emb).cpu(), labels)


def cached_features(clip: Clip, dataset, batch_size: int = 256, num_workers: int | None = None, progress: bool = True,
                    root=None, amp: bool = False) -> Features:
    """`extract_features`, cached on disk under a key of model, weights, dataset, split and preprocessing."""
    meta = {"version": FEATURES_VERSION, "model": clip.name, "weights": clip.tag,
            "dataset": getattr(dataset, "name", "?"), "split": getattr(dataset, "split", "?"),
            "data": dataset.fingerprint(), "preprocess": preprocess_config(clip.model).key,
            "amp": bool(amp)}
    path = (root or cache_root()) / f"{cache.cache_key(**meta)}.pt"

    def compute():
        f = extract_features(clip, dataset, batch_size, num_workers, progress, amp)
        return {"cls": f.cls, "emb": f.emb, "labels": f.labels}

    def check(t):          # intact but not this dataset's features (e.g. copied from elsewhere): rebuild it
        labels = torch.as_tensor(dataset.labels, dtype=torch.long)
        if len(t["labels"]) != len(dataset) or not torch.equal(t["labels"], labels):
            raise cache.CorruptCache(f"{path}: holds {len(t['labels'])} rows/other labels for a dataset of "
                                     f"{len(dataset)} images")
        if t["cls"].shape[0] != len(dataset) or t["emb"].shape[0] != len(dataset):
            raise cache.CorruptCache(f"{path}: feature rows do not match the {len(dataset)} labels")

    t = cache.cached(path, meta, compute, check)
    return Features(t["cls"], t["emb"], t["labels"])


def cls_to_embedding(clip: Clip, cls: torch.Tensor) -> torch.Tensor:
    """cls: (N, d) pre-ln_post CLS tokens -> (N, D) unit-norm image embeddings (ln_post, proj, normalise)."""
    visual = clip.model.visual
    d = visual.ln_post.normalized_shape[0]
    if cls.ndim != 2 or cls.shape[1] != d:
        raise ValueError(f"expected CLS tokens of shape (N, {d}), got {tuple(cls.shape)}")
    cls = cls.to(clip.device, visual.proj.dtype)
    return F.normalize(visual.ln_post(cls) @ visual.proj, dim=-1).float()


@torch.no_grad()
def cls_to_logits(clip: Clip, cls: torch.Tensor, head: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """cls: (N, d), head: (C, D) unit-norm text embeddings -> logits (N, C) = 100 * cosine similarity."""
    out = [100.0 * cls_to_embedding(clip, c) @ head.to(clip.device).T for c in cls.split(chunk)]
    return torch.cat(out) if out else torch.empty(0, head.shape[0])


@torch.no_grad()
def embedding_logits(emb: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """emb: (N, D) image embeddings (any norm), head: (C, D) -> logits (N, C)."""
    return 100.0 * F.normalize(emb.float(), dim=-1) @ head.to(emb.device).float().T


@torch.no_grad()
def dinov2_features(dataset, model: str = "dinov2_vitb14", device=None, batch_size: int = 128,
                    progress: bool = True) -> torch.Tensor:
    """DINOv2 CLS features (N, D) via torch.hub (needs internet or a populated hub cache)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        net = torch.hub.load("facebookresearch/dinov2", model).to(device).eval()
    except Exception as e:
        raise RuntimeError(f"could not load DINOv2 ({model}) from torch.hub: {e}. Use retrieval='clip' offline.") from e
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    for imgs, _ in tqdm(loader, disable=not progress, desc="DINOv2 features"):
        x = F.interpolate(imgs.to(device).float() / 255, size=224, mode="bicubic", antialias=True)
        out.append(net((x - mean) / std).float().cpu())
    return torch.cat(out)
