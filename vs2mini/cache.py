"""A small on-disk cache for tensors, with checksums.

Files are written atomically (temp file + rename). On load, the format version, the key metadata, and a
SHA-256 of every tensor are checked; a file that fails any check is moved aside to `*.corrupt` (never
deleted: nothing already computed is lost) and the caller recomputes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger(__name__)
CACHE_FORMAT = 1


def cache_key(**parts) -> str:
    """Readable, filesystem-safe key: short hash of all parts, prefixed by the most useful ones."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    prefix = "_".join(str(parts[p]) for p in ("model", "dataset", "split") if p in parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in prefix) + f"_{digest}"


def _checksum(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write `tensors` and `meta` to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    payload = {"format": CACHE_FORMAT, "meta": meta, "tensors": tensors,
               "checksums": {k: _checksum(v) for k, v in tensors.items()}}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


class CorruptCache(RuntimeError):
    pass


def load_tensors(path: str | Path, meta: dict | None = None) -> dict[str, torch.Tensor]:
    """Load and verify; raise FileNotFoundError if absent, CorruptCache if any check fails."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CorruptCache(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        raise CorruptCache(f"{path}: not a vs2mini cache file of format {CACHE_FORMAT}")
    if meta is not None and json.dumps(payload.get("meta"), sort_keys=True, default=str) != json.dumps(
            meta, sort_keys=True, default=str):
        raise CorruptCache(f"{path}: metadata differs from what was asked for")
    tensors, sums = payload.get("tensors", {}), payload.get("checksums", {})
    if set(tensors) != set(sums) or any(_checksum(v) != sums[k] for k, v in tensors.items()):
        raise CorruptCache(f"{path}: checksum mismatch (partial or damaged write)")
    return tensors


def move_aside(path: Path) -> Path:
    """Keep a bad file for inspection instead of deleting it."""
    stem = f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, i = path.with_name(stem), 1
    while dest.exists():                    # never overwrite an earlier bad file
        dest, i = path.with_name(f"{stem}-{i}"), i + 1
    os.replace(path, dest)
    return dest


def cached(path: str | Path, meta: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Return the cached tensors at `path`, or compute, save and return them. Corrupt files are rebuilt."""
    path = Path(path)
    if path.exists():
        try:
            return load_tensors(path, meta)
        except CorruptCache as e:
            log.warning("%s; moved to %s and recomputing", e, move_aside(path).name)
    tensors = compute()
    save_tensors(path, tensors, meta)
    return tensors
