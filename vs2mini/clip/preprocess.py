"""Image preprocessing on the device: uint8 batches in, normalised model inputs out.

Matches open_clip's eval transform (Resize shortest side, bicubic; CenterCrop; ToTensor; Normalize) closely:
torch's antialiased bicubic is PIL's kernel, and we round to uint8 after resizing as PIL does.
Doing it on the GPU removes the CPU bottleneck of upsampling 32-px CIFAR images to 224 with PIL.
The paper does not state its preprocessing; we assume CLIP's standard eval transform, as open_clip ships it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PreprocessConfig:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def key(self) -> str:
        """Part of the feature-cache key."""
        return f"gpu-bicubic-aa-{self.size}-" + ",".join(f"{v:.4f}" for v in self.mean + self.std)


def preprocess_config(model: torch.nn.Module) -> PreprocessConfig:
    """Read size, mean and std from an open_clip model."""
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = cfg.get("size", model.visual.image_size)
    size = size[0] if isinstance(size, (tuple, list)) else size
    if cfg.get("interpolation", "bicubic") != "bicubic" or cfg.get("resize_mode", "shortest") != "shortest":
        raise ValueError(f"vs2mini's device preprocessing implements bicubic/shortest-side resizing; got {cfg}")
    mean = tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)))
    std = tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
    return PreprocessConfig(int(size), mean, std)


def preprocess_batch(images: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """images: uint8 (B, 3, H, W) on any device -> float32 (B, 3, S, S) normalised."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected uint8 images of shape (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    x = images.float()
    h, w = x.shape[-2:]
    if min(h, w) != cfg.size:
        scale = cfg.size / min(h, w)
        new = (max(cfg.size, int(h * scale)), max(cfg.size, int(w * scale)))  # torchvision truncates
        x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255)  # PIL resizes in uint8
    top = int(round((x.shape[-2] - cfg.size) / 2.0))   # as torchvision's CenterCrop rounds
    left = int(round((x.shape[-1] - cfg.size) / 2.0))
    x = x[..., top:top + cfg.size, left:left + cfg.size] / 255.0
    mean = torch.tensor(cfg.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
