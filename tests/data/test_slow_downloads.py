"""A server on 127.0.0.1 that answers a few bytes at a time must not keep a download alive past its deadline or
below its minimum rate: through vs2mini's own download and through torchvision's (the OOD datasets). The server's
loop is bounded (it stops by itself after SERVER_S seconds), so even a broken deadline cannot hang the test."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from vs2mini.data import archives
from vs2mini.data import download as net
from vs2mini.data import images
from vs2mini.data import registry as D

SERVER_S = 20.0          # the slow server gives up after this long; every bound below is far shorter


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()

    def do_GET(self):
        self.do_HEAD()
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < SERVER_S:      # 3 bytes every 0.1 s: alive, never done
                self.wfile.write(b"abc")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:                                   # the client hung up: the point of the test
            pass

    def log_message(self, *a):
        pass


@pytest.fixture
def slow_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_deadline_stops_a_trickling_server(tmp_path, monkeypatch, slow_server):
    monkeypatch.setenv(net.TIMEOUT_ENV, "5")
    monkeypatch.setenv(net.DEADLINE_ENV, "2")
    monkeypatch.setenv(net.MIN_RATE_ENV, "1")             # 30 bytes/s passes the rate: only the deadline can stop it
    t0 = time.monotonic()
    with pytest.raises(net.DownloadError, match="deadline of 2 s"):
        net.download(f"{slow_server}/x.tgz", tmp_path / "x.tgz")
    assert time.monotonic() - t0 < 2 + 5                  # deadline + at most one read time-out
    assert list(tmp_path.iterdir()) == []


def test_minimum_rate_stops_a_trickling_server(tmp_path, monkeypatch, slow_server):
    monkeypatch.setenv(net.TIMEOUT_ENV, "1")              # the rate window
    monkeypatch.setenv(net.MIN_RATE_ENV, "1000")
    t0 = time.monotonic()
    with pytest.raises(net.DownloadError, match="too slow"):
        net.download(f"{slow_server}/x.tgz", tmp_path / "x.tgz")
    assert time.monotonic() - t0 < 5
    assert list(tmp_path.iterdir()) == []


def test_dataset_download_has_the_deadline(tmp_path, monkeypatch, slow_server):
    """Tiny-ImageNet through vs2mini's own download (the issue's case)."""
    monkeypatch.setenv(net.TIMEOUT_ENV, "5")
    monkeypatch.setenv(net.DEADLINE_ENV, "2")
    monkeypatch.setenv(net.MIN_RATE_ENV, "1")
    folder, _, filename, md5 = archives.SOURCES["tinyimagenet"]
    monkeypatch.setitem(archives.SOURCES, "tinyimagenet", (folder, f"{slow_server}/{filename}", filename, md5))
    t0 = time.monotonic()
    with pytest.raises(images.DatasetNotAvailable, match="deadline"):
        D.load_dataset("tinyimagenet", "val", root=tmp_path / "data")
    assert time.monotonic() - t0 < 2 + 5
    assert not list(tmp_path.rglob("*.tmp*"))


def test_torchvision_download_has_the_deadline(tmp_path, monkeypatch, slow_server):
    """Food-101 through torchvision's download (which opens URLs without any time-out)."""
    import torchvision.datasets as tvd
    from vs2mini.data.ood import load_ood
    monkeypatch.setenv(net.TIMEOUT_ENV, "5")
    monkeypatch.setenv(net.DEADLINE_ENV, "2")
    monkeypatch.setenv(net.MIN_RATE_ENV, "1")
    monkeypatch.setattr(tvd.Food101, "_URL", f"{slow_server}/food-101.tar.gz")
    t0 = time.monotonic()
    with pytest.raises(images.DatasetNotAvailable, match="deadline"):
        load_ood("food101", tmp_path / "data", "train", download=True, limit=None, seed=0)
    assert time.monotonic() - t0 < 2 + 5
    assert not list(tmp_path.rglob("*.tmp*"))


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
def test_bad_limits_are_named(monkeypatch, value):
    monkeypatch.setenv(net.DEADLINE_ENV, value)
    with pytest.raises(ValueError, match=net.DEADLINE_ENV):
        net.deadline_s()
