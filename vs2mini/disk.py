"""Everything vs2mini writes to disk: atomic writes with unique temporary names, checksums, and the tensor cache.

Every file is written under a temporary name no other process or thread uses (`unique_tmp`) and renamed into
place, so a reader never sees half a file and two writers never mix. Cache files are written that way too. On
load, the format version, the key metadata, and a SHA-256 of every tensor are checked; a file that fails any check is moved aside to `*.corrupt`
(never deleted: nothing already computed is lost) and the caller recomputes. A cache folder that cannot be
written costs the caching, not the result; temp files left by killed processes are removed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger(__name__)
CACHE_FORMAT = 1
STALE_TMP_S = 24 * 3600          # a temp file this old is stale even if its pid is alive again (pid reuse)


def cache_key(**parts) -> str:
    """Readable, filesystem-safe key: short hash of all parts, prefixed by the most useful ones."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    prefix = "_".join(str(parts[p]) for p in ("model", "dataset", "split") if p in parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in prefix) + f"_{digest}"


def unique_tmp(path: Path) -> Path:
    """A temporary name next to `path` that no other process or thread uses (pid + random suffix)."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (unique temporary file + rename); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_tmp(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _checksum(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def tensors_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (in name order): detects damaged or edited files."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, read in chunks (`algorithm`: any hashlib name; archives publish md5)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the toy CLIP's weights record)."""
    return file_digest(path, "sha256")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write `tensors` and `meta` to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    payload = {"format": CACHE_FORMAT, "meta": meta, "tensors": tensors,
               "checksums": {k: _checksum(v) for k, v in tensors.items()}}
    tmp = unique_tmp(path)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                        # exists, owned by someone else
    return True


def clean_stale_tmp(path: Path) -> list[Path]:
    """Remove `<path>.tmp<pid>[-<hex>]` files whose process is gone (killed mid-write) or older than a day."""
    removed = []
    for tmp in path.parent.glob(f"{path.name}.tmp*"):
        pid = tmp.name[len(path.name) + 4:].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue                        # not a vs2mini temp name, or this process's own (another thread)
        try:
            if _pid_alive(int(pid)) and time.time() - tmp.stat().st_mtime < STALE_TMP_S:
                continue                    # a live writer
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass                            # another process removed it first
    return removed


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


def move_aside(path: Path) -> Path | None:
    """Keep a bad file for inspection instead of deleting it. None if another process moved it first."""
    stem = f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, i = path.with_name(stem), 1
    while dest.exists():                    # never overwrite an earlier bad file
        dest, i = path.with_name(f"{stem}-{i}"), i + 1
    try:
        os.replace(path, dest)
    except FileNotFoundError:               # a concurrent reader of the same bad file was faster
        return None
    return dest


def _ident(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def cached(path: str | Path, meta: dict, compute: Callable[[], dict[str, torch.Tensor]],
           check: Callable[[dict[str, torch.Tensor]], None] | None = None) -> dict[str, torch.Tensor]:
    """Return the cached tensors at `path`, or compute, save and return them. Corrupt files are rebuilt.
    `check(tensors)` may raise CorruptCache for a file that is intact but wrong (e.g. a row count): it is rebuilt too.
    If the cache cannot be written, the computed tensors are returned anyway, with one warning line."""
    path = Path(path)
    if path.exists():
        try:
            ident = _ident(path)
            tensors = load_tensors(path, meta)
            if check is not None:
                check(tensors)
            return tensors
        except CorruptCache as e:
            # only the file we judged is moved: a concurrent reader may already have put a good one in its place
            dest = move_aside(path) if _ident(path) == ident else None
            log.warning("%s; %s and recomputing", e, f"moved to {dest.name}" if dest else "moved by another process")
        except FileNotFoundError:           # removed (moved aside) by a concurrent reader between exists() and load
            pass
    tensors = compute()
    try:
        clean_stale_tmp(path)
        save_tensors(path, tensors, meta)
    except OSError as e:
        log.warning("cannot write the cache file %s (%s): the result is used but not cached; set $VS2MINI_CACHE to "
                    "a writable folder", path, e.strerror or e)
    return tensors
