"""Everything vs2mini writes to disk: the one writer of every output file, and checksums (the tensor cache that
uses them: vs2mini/cache.py).

The writer (`write_bytes`, `write_text`, `write_json`, `save_torch`, `save_figure`): a unique temporary name beside the
target (`<name>.tmp<pid>-<hex>`) and `os.replace`; a full disk (ENOSPC), a read-only file system (EROFS) or a folder
without write permission (EACCES, EPERM) becomes one `OutputError` line naming the file and what to do, and the
temporary file is removed in every case. `exclusive=True` claims the target at placement (a hard link, which fails
if the name exists): two runs writing the same `--out` never replace each other silently (`OutputExists`);
`save_or_rescue` then keeps the computed result under another name.

Every file is written under a temporary name no other process or thread uses (`unique_tmp`) and renamed into
place, so a reader never sees half a file and two writers never mix. Cache files go through the same writer. On
load, the format version, the key metadata, and a SHA-256 of every tensor are checked; a file that fails any check
is moved aside to `*.corrupt`
(never deleted: nothing already computed is lost) and the caller recomputes. A cache folder that cannot be
written costs the caching, not the result; temp files left by killed processes are removed.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import sys
import uuid
from pathlib import Path

import torch



def unique_tmp(path: Path) -> Path:
    """A temporary name next to `path` that no other process or thread uses (pid + random suffix)."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")


# ------------------------------------------------------------------ the one writer of every output file
_WHY = {errno.ENOSPC: "no space left on the device; free some space or choose another path",
        errno.EDQUOT: "disk quota exceeded; free some space or choose another path",
        errno.EROFS: "the file system is read-only; choose a writable path",
        errno.EACCES: "permission denied; choose a folder you may write to",
        errno.EPERM: "operation not permitted; choose a folder you may write to",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "it is a folder; give a file name"}


class OutputError(OSError):
    """An output file could not be written; the message names it and says what to do."""

    def __str__(self) -> str:                  # the message alone, without OSError's "[Errno 28]" prefix
        return self.strerror or super().__str__()


class OutputExists(OutputError, FileExistsError):
    """The output file exists (or appeared while this run worked) and overwriting was not asked for."""


def output_error(path: Path, e: OSError) -> OutputError:
    """One line: which file, what happened, what to do."""
    why = _WHY.get(e.errno, e.strerror or str(e))
    return OutputError(e.errno, f"cannot write {path}: {why}")


def _write_all(fd: int, data: bytes) -> None:
    view, n = memoryview(data), 0
    while n < len(view):
        n += os.write(fd, view[n:])


def _claim(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path` only if `path` does not exist (atomic: a hard link fails on an existing name)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExists(errno.EEXIST, f"{path} already exists (another run may have written it meanwhile); "
                                         "pass --force to overwrite it, or choose another file") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: claim the name with O_EXCL, then fill it by rename
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise OutputExists(errno.EEXIST, f"{path} already exists (another run may have written it meanwhile); "
                                             "pass --force to overwrite it, or choose another file") from None
        os.replace(tmp, path)


def write_bytes(path: str | Path, data: bytes, *, exclusive: bool = False, mode: int = 0o644) -> Path:
    """Write `data` to `path` atomically (see the module doc). Raises OutputError / OutputExists, one line each."""
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unique_tmp(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            _write_all(fd, data)
            os.fsync(fd)                       # a full disk can also show up only here
        finally:
            os.close(fd)
        os.chmod(tmp, mode)                    # independent of the umask
        if exclusive:
            _claim(tmp, path)
        else:
            os.replace(tmp, path)
    except OutputError:
        raise
    except OSError as e:
        raise output_error(path, e) from None
    finally:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    return path


def write_text(path: str | Path, text: str, **kw) -> Path:
    return write_bytes(path, text.encode(), **kw)


def write_json(path: str | Path, obj, **kw) -> Path:
    """`obj` as indented JSON (a str is written as it is)."""
    return write_text(path, obj if isinstance(obj, str) else json.dumps(obj, indent=2) + "\n", **kw)


def save_torch(path: str | Path, obj, **kw) -> Path:
    """`torch.save(obj)` through `write_bytes`: serialised in memory first, so a full disk is an OSError with its
    errno (torch's own file writer reports it as an opaque RuntimeError)."""
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue(), **kw)


def save_figure(fig, path: str | Path, **savefig_kw) -> Path:
    """`fig.savefig` through `write_bytes` (the format from the file's suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=savefig_kw.pop("format", path.suffix.lstrip(".") or "png"), **savefig_kw)
    return write_bytes(path, buf.getvalue())


def check_writable(path: Path | None, flag: str) -> None:
    """Fail in the first second, not after the run: the folder can be created and a file written in it."""
    if path is None:
        return
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = unique_tmp(path.with_name(f".{path.name}.probe"))
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot write there ({e.strerror or e}); choose another path") from None


def check_new(path: str | Path, force: bool, flag: str = "--out") -> None:
    """Before any work: refuse an existing output unless --force (the claim at write time is the real guard)."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExists(errno.EEXIST, f"{path} already exists; pass --force to overwrite it, or {flag} to "
                                         "choose another file")


def rescue_path(path: str | Path, exists: bool) -> Path:
    """Where a computed result goes when `path` cannot take it: beside it under a unique name when the name was
    taken (OutputExists), else in the system's temporary folder (the target's disk is full or read-only)."""
    import tempfile
    import time
    path = Path(path)
    tag = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder = path.parent if exists else Path(tempfile.gettempdir())
    return folder / f"{path.stem}.rescued-{tag}{path.suffix}"


def save_or_rescue(save, path: str | Path, force: bool, what: str) -> Path:
    """`save(path, exclusive)` the result of a long run; if the target cannot take it (taken meanwhile, full or
    read-only disk), save it under `rescue_path` and raise an OutputError that says where it is: a failed write
    never costs the computed result."""
    path = Path(path)
    try:
        return save(path, not force)
    except OutputError as e:
        rescue = rescue_path(path, isinstance(e, OutputExists))
        try:
            save(rescue, True)
        except OutputError as e2:
            raise OutputError(e.errno, f"{e}; saving the {what} to {rescue} failed too ({e2})") from None
        raise type(e)(e.errno, f"{e}; the {what} was saved to {rescue} instead") from None


def silence_closed_stdout() -> int:
    """The reader of stdout went away: point stdout at /dev/null so the interpreter's final flush cannot raise
    again, and exit with 128 + SIGPIPE as other command line tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


# ------------------------------------------------------------------ cache and checksums
def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (the one writer below: unique temporary file + rename, one-line errors)."""
    return write_text(path, text)


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
