"""The SAE file format: one `torch.save` dict with the config, the weights, a SHA-256 of the tensors, the package
version and JSON-able extras (training history, profile, dataset, ...), written atomically.

    save_sae(sae, "runs/sae.pt", history=hist)      # refuses NaN/inf weights
    sae = load_sae("runs/sae.pt")                    # checksum and finiteness verified
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .. import __version__
from ..disk import save_torch, tensors_checksum
from .sae import SAE_FORMAT, SAE_FORMAT_VERSION, TopKSAE

_FORMAT_RE = re.compile(r"vs2mini-topk-sae-v(\d+)$")


def save_sae(sae: TopKSAE, path: str | Path, *, exclusive: bool = False, **extra) -> Path:
    """Save weights + config (+ JSON-able `extra`: training history, profile, dataset, ...) through the one writer
    (vs2mini.disk: atomic, one-line disk errors; `exclusive`: OutputExists if `path` exists at placement, never
    replaced). The file records a SHA-256 of the tensors and the package version; non-finite weights are refused."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in sae.state_dict().items()}
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"refusing to save an SAE with NaN/inf weights in {bad} to {path}; training diverged")
    return save_torch(path, {"config": sae.config(), "state_dict": state, "checksum": tensors_checksum(state),
                             "vs2mini_version": __version__, "extra": extra}, exclusive=exclusive)


def read_sae_file(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The verified contents of an SAE file: {"config", "state_dict", "extra", "vs2mini_version"}.
    Raises ValueError naming the file for anything that is not an intact vs2mini SAE of a known format."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path} is not a readable vs2mini SAE file ({type(e).__name__}: {e})") from e
    cfg = blob.get("config", {}) if isinstance(blob, dict) else {}
    fmt = cfg.get("format") if isinstance(cfg, dict) else None
    m = _FORMAT_RE.match(fmt) if isinstance(fmt, str) else None
    if m and int(m.group(1)) > SAE_FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer vs2mini (SAE format v{m.group(1)}; this version reads "
                         f"up to v{SAE_FORMAT_VERSION}): upgrade vs2mini (pip install -U vs2mini) to load it")
    if not m:
        raise ValueError(f"{path} is not a vs2mini SAE file (format {fmt!r}, want {SAE_FORMAT!r})")
    state = blob.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a vs2mini SAE file (no tensor state_dict)")
    if int(m.group(1)) >= 2 and blob.get("checksum") != tensors_checksum(state):
        raise ValueError(f"{path}: checksum mismatch: the SAE file is damaged or was edited; retrain or re-copy it")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: weights {bad} contain NaN or inf; this SAE is unusable, retrain it")
    return {"config": cfg, "state_dict": state, "extra": blob.get("extra", {}),
            "vs2mini_version": blob.get("vs2mini_version")}


def load_sae(path: str | Path, device: str | torch.device = "cpu") -> TopKSAE:
    """Load a file written by `save_sae` (checksum and finiteness verified); raises ValueError for anything else."""
    blob = read_sae_file(path, device)
    cfg = blob["config"]
    try:
        sae = TopKSAE(cfg["d_in"], cfg["n_latents"], cfg["k"]).to(device)
        sae.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: config and weights do not fit ({type(e).__name__}: {e})") from e
    return sae
