"""Network access that never hangs: a reachability probe and a checksummed file download, both with time-outs.

A network that accepts connections but never answers (a captive portal, a dead proxy) must fail in seconds:
every socket operation here has a time-out (urllib applies it to the connect and to every read). A server that
answers a few bytes at a time must fail too: each download also has a total deadline and a minimum rate
($VS2MINI_NET_DEADLINE, $VS2MINI_NET_MIN_RATE), and torchvision's downloads are routed through the same code.
"""
from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..disk import file_digest, unique_tmp

TIMEOUT_ENV = "VS2MINI_NET_TIMEOUT"
DEADLINE_ENV = "VS2MINI_NET_DEADLINE"
MIN_RATE_ENV = "VS2MINI_NET_MIN_RATE"
DEFAULT_DEADLINE = 6 * 3600.0     # seconds for one file: SUN397's 37 GB at 2 MB/s; raise it for slower links
DEFAULT_MIN_RATE = 1024.0         # bytes/s over each time-out window: slower than this is a stall, not a download
PROBE_TIMEOUT = 5.0           # seconds: the reachability probe (connect + first answer)
USER_AGENT = "vs2mini"


def timeout_s(default: float = 30.0) -> float:
    """Connect/read time-out for downloads: $VS2MINI_NET_TIMEOUT seconds (positive), default 30."""
    return _env_number(TIMEOUT_ENV, default)


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


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:                                   # also refuses nan
        raise ValueError(f"${name} must be a positive number, got {raw!r}")
    return value


def deadline_s() -> float:
    """Total time one download may take: $VS2MINI_NET_DEADLINE seconds, default 6 hours."""
    return _env_number(DEADLINE_ENV, DEFAULT_DEADLINE)


def min_rate() -> float:
    """Slowest accepted transfer: $VS2MINI_NET_MIN_RATE bytes per second (default 1024), averaged over every window
    of the read time-out ($VS2MINI_NET_TIMEOUT)."""
    return _env_number(MIN_RATE_ENV, DEFAULT_MIN_RATE)


class _Pace:
    """The total deadline and the minimum rate of one transfer; `check(n)` after every read of n bytes."""

    def __init__(self, url: str, deadline: float, rate: float, window: float):
        self.url, self.deadline, self.rate, self.window = url, deadline, rate, window
        self.t0 = self.w0 = time.monotonic()
        self.total = self.in_window = 0

    def check(self, n: int) -> None:
        now = time.monotonic()
        self.total += n
        self.in_window += n
        if now - self.t0 > self.deadline:
            raise DownloadError(f"{self.url}: not finished within the deadline of {self.deadline:g} s ({self.total} "
                                f"bytes received); a faster network or a larger ${DEADLINE_ENV} helps")
        if now - self.w0 >= self.window:
            got = self.in_window / (now - self.w0)
            if got < self.rate:
                raise DownloadError(f"{self.url}: too slow ({got:.0f} bytes/s over {now - self.w0:.0f} s, the minimum "
                                    f"is {self.rate:g}; ${MIN_RATE_ENV}); the server or network is stalling")
            self.w0, self.in_window = now, 0


def download(url: str, dest: str | Path, md5: str | None = None, timeout: float | None = None,
             chunk: int = 1 << 20, deadline: float | None = None, rate: float | None = None,
             progress: bool = True) -> Path:
    """Fetch `url` to `dest` through a unique temporary file; check the length the server announced and `md5`.
    Nothing is left at `dest` unless the whole, verified file arrived. Bounded in time: every read by `timeout`
    ($VS2MINI_NET_TIMEOUT), the whole transfer by `deadline` ($VS2MINI_NET_DEADLINE), and a transfer slower than
    `rate` bytes/s ($VS2MINI_NET_MIN_RATE) over a `timeout` window stops. A disk that cannot take the file is an
    OutputError naming it (not blamed on the network). `progress`: a tqdm bar (bytes) on stderr."""
    from tqdm.auto import tqdm

    from ..disk import OutputError, output_error
    dest = Path(dest)
    timeout = timeout_s() if timeout is None else timeout
    pace = _Pace(url, deadline_s() if deadline is None else deadline, min_rate() if rate is None else rate, timeout)
    tmp = unique_tmp(dest)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            f = open(tmp, "wb")
        except OSError as e:
            raise output_error(dest, e) from None
        with f:
            try:
                with urllib.request.urlopen(req, timeout=min(timeout, pace.deadline)) as r:
                    expected = r.headers.get("Content-Length")
                    n = 0
                    bar = tqdm(total=int(expected) if expected else None, unit="B", unit_scale=True,
                               unit_divisor=1024, desc=f"downloading {dest.name}", disable=not progress,
                               mininterval=1.0)
                    # read1: whatever one socket read brings (read(n) would wait for all n bytes, past any deadline)
                    with bar:
                        while block := r.read1(chunk):
                            try:
                                f.write(block)
                            except OSError as e:
                                raise output_error(dest, e) from None
                            n += len(block)
                            bar.update(len(block))
                            pace.check(len(block))
            except (DownloadError, OutputError):
                raise
            except urllib.error.HTTPError as e:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, OSError) as e:
                why = getattr(e, "reason", None) or e
                raise DownloadError(f"{url}: no answer within {timeout:g} s or connection failed ({why}); "
                                    f"check the network (time-out: ${TIMEOUT_ENV})") from None
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise output_error(dest, e) from None
        if expected is not None and n != int(expected):
            raise DownloadError(f"{url}: truncated download ({n} of {expected} bytes)")
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise DownloadError(f"{url}: md5 {got} does not match the expected {md5} (damaged or changed file)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@contextlib.contextmanager
def torchvision_downloads():
    """Route torchvision.datasets' downloads (the OOD datasets) through `download`: the same read time-out, total
    deadline, minimum rate, temporary file and one-line errors. torchvision itself opens URLs without a time-out.
    Patches `torchvision.datasets.utils._urlretrieve` and `_get_redirect_url` (torchvision >= 0.17) for the block;
    where those names are missing (another version) a socket default time-out still bounds every read."""
    import socket

    import torchvision.datasets.utils as tvu

    def retrieve(url, filename, chunk_size=1 << 20):
        download(url, filename)

    def redirect(url, max_hops=3):                 # urllib follows redirects; only bound the probe in time
        req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s()) as r:
                return r.url or url
        except urllib.error.HTTPError:
            return url
        except (urllib.error.URLError, OSError) as e:
            raise DownloadError(f"{url}: no answer within {timeout_s():g} s or connection failed "
                                f"({getattr(e, 'reason', None) or e}); check the network (time-out: "
                                f"${TIMEOUT_ENV})") from None

    saved = {name: getattr(tvu, name) for name in ("_urlretrieve", "_get_redirect_url") if hasattr(tvu, name)}
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s())
    try:
        for name, fn in (("_urlretrieve", retrieve), ("_get_redirect_url", redirect)):
            if name in saved:
                setattr(tvu, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(tvu, name, fn)
        socket.setdefaulttimeout(previous)
