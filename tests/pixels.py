"""Image helpers shared by the preprocessing and model tests (tests/ is on sys.path: see conftest.py)."""
from __future__ import annotations

import functools

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from vs2mini.clip import toyclip


@functools.lru_cache(maxsize=1)
def open_clip_eval_transforms() -> dict:
    """open_clip's own eval transforms (PIL) and the models they belong to: tiny (64 px), toy (32 px) and ViT-B/32
    (224 px), built once per session."""
    toyclip.register_local_configs()
    out = {}
    for name in (toyclip.TINY_MODEL, toyclip.TOY_MODEL, "ViT-B-32-quickgelu"):
        model, _, val = open_clip.create_model_and_transforms(name, pretrained=None)
        out[name] = (model, val)
    return out


def smooth_images(n, h, w, seed=0):
    """uint8 (n, 3, h, w): random low-frequency colour fields (bilinear upsampling of 7x9 noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 7, 9, generator=g)
    up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=True)
    return (up * 255).round().clamp(0, 255).to(torch.uint8)


def pil_batch(images, transform):
    """uint8 (n, 3, h, w) through a PIL transform, one image at a time -> (n, 3, S, S)."""
    return torch.stack([transform(Image.fromarray(im.permute(1, 2, 0).numpy())) for im in images])


def unnormalise(x, cfg):
    return x * torch.tensor(cfg.std).view(1, 3, 1, 1) + torch.tensor(cfg.mean).view(1, 3, 1, 1)
