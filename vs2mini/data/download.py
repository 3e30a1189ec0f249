"""Network access that never hangs: a reachability probe and a checksummed file download, both with time-outs.

A network that accepts connections but never answers (a captive portal, a dead proxy) must fail in seconds:
every socket operation here has a time-out (urllib applies it to the connect and to every read).
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from ..disk import file_digest, unique_tmp

TIMEOUT_ENV = "VS2MINI_NET_TIMEOUT"
PROBE_TIMEOUT = 5.0           # seconds: the reachability probe (connect + first answer)
USER_AGENT = "vs2mini"


def timeout_s(default: float = 30.0) -> float:
    """Connect/read time-out for downloads: $VS2MINI_NET_TIMEOUT seconds, default 30."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, default))
    except ValueError:
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds, got {os.environ[TIMEOUT_ENV]!r}") from None


class DownloadError(OSError):
    """A download failed (no answer, HTTP error, short or damaged file); the message says which and what to do."""


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if the server of `url` answers an HTTP HEAD request within `timeout` seconds (any status counts)."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True                       # it answered
    except (urllib.error.URLError, OSError, ValueError):
        return False


def md5sum(path: Path) -> str:
    """MD5 of a file (the checksum the dataset archives publish)."""
    return file_digest(path, "md5")


def download(url: str, dest: str | Path, md5: str | None = None, timeout: float | None = None,
             chunk: int = 1 << 20, progress: bool = True) -> Path:
    """Fetch `url` to `dest` through a unique temporary file; check the length the server announced and `md5`.
    Nothing is left at `dest` unless the whole, verified file arrived. `progress`: a tqdm bar (bytes) on stderr."""
    from tqdm.auto import tqdm
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    timeout = timeout_s() if timeout is None else timeout
    tmp = unique_tmp(dest)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r, open(tmp, "wb") as f:
                expected = r.headers.get("Content-Length")
                n = 0
                with tqdm(total=int(expected) if expected else None, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"downloading {dest.name}", disable=not progress, mininterval=1.0) as bar:
                    for block in iter(lambda: r.read(chunk), b""):
                        f.write(block)
                        n += len(block)
                        bar.update(len(block))
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            why = getattr(e, "reason", None) or e
            raise DownloadError(f"{url}: no answer within {timeout:g} s or connection failed ({why}); "
                                f"check the network (time-out: ${TIMEOUT_ENV})") from None
        if expected is not None and n != int(expected):
            raise DownloadError(f"{url}: truncated download ({n} of {expected} bytes)")
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise DownloadError(f"{url}: md5 {got} does not match the expected {md5} (damaged or changed file)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
