"""CLS tokens at any depth of the open_clip vision tower: capture them, edit them, continue the forward pass.

Layers are named the paper's way (paper v3 §2.2, Table 7): 1-indexed, layer L is the OUTPUT of block L - 1 of
`model.visual.transformer.resblocks`. ViT-B has 12 blocks: layer 12 = block 11 = the final-layer CLS token that
`features.encode_images` captures; ViT-L/14's "layer 23" (App. H, 0-indexed) is our layer 24.

    final, caps = run_tower(clip, images, edits={11: vs2_edit(sae11), 12: vs2_edit(sae12)}, capture=(12,))

An edit replaces the CLS token of that layer's output; the remaining blocks then run on the edited sequence, so
patch tokens attend to the steered token and the perturbation propagates (paper App. E). SAE^A_REC (paper §4.1)
edits every layer with that layer's SAE reconstruction. `final` (N, d) is the last block's CLS token before
`ln_post`, so `features.cls_to_logits` finishes the forward pass exactly as for final-layer steering.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from .. import cache
from ..config import cache_root
from .features import _batches, encode_images
from .models import Clip
from .preprocess import preprocess_config

Edit = Callable[[torch.Tensor], torch.Tensor]       # (B, d) CLS tokens -> (B, d); the steering edits: method/steer.py
DEPTH_VERSION = 1


def _workers() -> int:
    """DataLoader workers for datasets read from files (as features.extract_features)."""
    return min(8, os.cpu_count() or 1)


def n_layers(clip: Clip) -> int:
    """Number of residual blocks of the vision tower (12 for ViT-B, 24 for ViT-L)."""
    return len(clip.model.visual.transformer.resblocks)


def block_index(layer: int) -> int:
    """Paper layer (1-indexed) -> 0-indexed block of `resblocks`."""
    return layer - 1


def check_layers(clip: Clip, layers: Iterable[int]) -> tuple[int, ...]:
    """Sorted unique layers, each in 1..n_layers; a clear ValueError otherwise (before any forward pass)."""
    n = n_layers(clip)
    layers = tuple(sorted(set(int(v) for v in layers)))
    bad = [v for v in layers if not 1 <= v <= n]
    if bad:
        raise ValueError(f"layer {bad[0]} does not exist: {clip.name} has layers 1..{n} (1-indexed like the paper; "
                         f"layer {n} is the last block, 0-indexed block {n - 1})")
    return layers


def _cls(h: torch.Tensor, batch_first: bool) -> torch.Tensor:
    return h[:, 0] if batch_first else h[0]


def _replace_cls(h: torch.Tensor, cls: torch.Tensor, batch_first: bool) -> torch.Tensor:
    cls = cls.to(h.device, h.dtype)
    return torch.cat([cls[:, None], h[:, 1:]], 1) if batch_first else torch.cat([cls[None], h[1:]], 0)


@torch.no_grad()
def run_tower(clip: Clip, images: torch.Tensor, edits: dict[int, Edit] | None = None,
              capture: Iterable[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """images: uint8 (B, 3, H, W) -> (final CLS before ln_post (B, d), {layer: CLS (B, d) after that layer's edit}).
    edits: {layer: f} replaces layer's output CLS token x by f(x) (float32 in, (B, d) out).

    Forward hooks on the blocks of `resblocks` (public torch API, any open_clip version) edit and capture the
    tokens while open_clip runs its own forward pass (features.encode_images), so the embedding path is the
    model's own and no private open_clip function is called."""
    edits = edits or {}
    capture = set(capture)
    check_layers(clip, set(edits) | capture)
    tower = clip.model.visual.transformer
    batch_first = getattr(tower, "batch_first", True)        # open_clip >= 2.24 says; blocks see (B, L, d) then
    caps: dict[int, torch.Tensor] = {}

    def hook(layer: int):
        def after_block(_module, _inputs, h):
            if layer in edits:
                h = _replace_cls(h, edits[layer](_cls(h, batch_first).float()), batch_first)
            if layer in capture:
                caps[layer] = _cls(h, batch_first).float()
            return h                                         # a returned value replaces the block's output
        return after_block

    handles = [block.register_forward_hook(hook(i + 1)) for i, block in enumerate(tower.resblocks)
               if i + 1 in edits or i + 1 in capture]
    try:
        final, _ = encode_images(clip, images)
    finally:
        for handle in handles:
            handle.remove()
    return final, caps


@torch.no_grad()
def layer_features(clip: Clip, dataset, layers: Iterable[int], batch_size: int = 256, progress: bool = True,
                   root=None) -> dict[int, torch.Tensor]:
    """CLS tokens (N, d) of every image of `dataset` at each of `layers` (one forward pass), cached on disk."""
    layers = check_layers(clip, layers)
    meta = {"version": DEPTH_VERSION, "model": clip.name, "weights": clip.tag, "layers": list(layers),
            "dataset": getattr(dataset, "name", "?"), "split": getattr(dataset, "split", "?"),
            "data": dataset.fingerprint(), "preprocess": preprocess_config(clip.model).key}
    path = (root or cache_root()) / f"depth_{cache.cache_key(**meta)}.pt"

    def compute():
        out = {v: [] for v in layers}
        for imgs in tqdm(_batches(dataset, batch_size, _workers()), total=-(-len(dataset) // batch_size),
                         disable=not progress, desc=f"layers {list(layers)}"):
            _, caps = run_tower(clip, imgs, capture=layers)
            for v in layers:
                out[v].append(caps[v].cpu())
        return {f"layer{v}": torch.cat(out[v]) for v in layers}

    t = cache.cached(path, meta, compute)
    return {v: t[f"layer{v}"] for v in layers}


@torch.no_grad()
def edited_features(clip: Clip, dataset, edits: dict[int, Edit], batch_size: int = 256,
                    progress: bool = False) -> torch.Tensor:
    """Final CLS tokens (N, d) of `dataset` with `edits` applied during the forward pass (not cached)."""
    check_layers(clip, edits)
    out = [run_tower(clip, imgs, edits)[0].cpu()
           for imgs in tqdm(_batches(dataset, batch_size, _workers()), total=-(-len(dataset) // batch_size),
                            disable=not progress, desc="steered forward")]
    return torch.cat(out)
