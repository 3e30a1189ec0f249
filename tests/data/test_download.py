"""The real download path against a local HTTP server on 127.0.0.1 (issue 10, points 6 and 11).

Archives are built here in the datasets' real formats (CIFAR-100's python tarball, CUB's tgz, Tiny-ImageNet's zip)
from the same fixtures the loader tests use; `data.SOURCES` is pointed at the local server, and the real download,
md5 check, extraction and loading code runs. A server that accepts connections and never answers checks the
time-outs. Everything binds to 127.0.0.1, is bounded by short time-outs, and is stopped by the test.
"""
from __future__ import annotations

import hashlib
import http.server
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import open_clip
import pytest
import torch

from datasets_fixtures import make_cifar100, make_cub, make_tiny
from vs2mini.clip import models as vclip
from vs2mini.clip import toyclip
from vs2mini.data import registry as D
from vs2mini.data import archives
from vs2mini.data import images
from vs2mini.data import download as net


# ------------------------------------------------------------------------------------------------ servers
class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):
        short = self.path.startswith("/short/")
        body = self.files.get(self.path.removeprefix("/short"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))     # /short/ announces all, sends half, hangs up
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if short else body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    """(base URL, files dict) of a threaded HTTP server on 127.0.0.1, shut down after the test."""
    handler = type("H", (_Handler,), {"files": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.files
    httpd.shutdown()
    httpd.server_close()
    t.join(timeout=5)


@pytest.fixture
def silent_server():
    """A port that completes TCP handshakes (listen backlog) and never sends a byte."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


# ------------------------------------------------------------------------------------------------ archives
def _tar(src: Path, folder: str, out: Path, mode: str) -> bytes:
    with tarfile.open(out, mode) as tf:
        tf.add(src / folder, arcname=folder)
    return out.read_bytes()


def _zip(src: Path, folder: str, out: Path) -> bytes:
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted((src / folder).rglob("*")):
            zf.write(f, f.relative_to(src))
    return out.read_bytes()


def build_archive(name: str, tmp: Path) -> bytes:
    src = tmp / f"src-{name}"
    if name == "cifar100":
        make_cifar100(src)
        return _tar(src, "cifar-100-python", tmp / "cifar-100-python.tar.gz", "w:gz")
    if name == "cub200":
        make_cub(src)
        return _tar(src, "CUB_200_2011", tmp / "CUB_200_2011.tgz", "w:gz")
    make_tiny(src)
    return _zip(src, "tiny-imagenet-200", tmp / "tiny-imagenet-200.zip")


def _serve(monkeypatch, server, name, body, md5=None, prefix=""):
    base, files = server
    folder, _, filename, _ = archives.SOURCES[name]
    files[f"/{filename}"] = body
    monkeypatch.setitem(archives.SOURCES, name, (folder, f"{base}{prefix}/{filename}", filename,
                                          md5 or hashlib.md5(body).hexdigest()))


EXPECTED = {"cifar100": ("train", 50, 5), "cub200": ("train", 4, 3), "tinyimagenet": ("val", 5, 3)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_download_verify_extract_load(name, tmp_path, monkeypatch, server):
    body = build_archive(name, tmp_path)
    _serve(monkeypatch, server, name, body)
    root = tmp_path / "data"
    split, n, n_classes = EXPECTED[name]
    ds = D.load_dataset(name, split, root=root)
    assert len(ds) == n and len(ds.classnames) == n_classes
    img, label = ds[0]
    assert img.dtype == torch.uint8 and img.shape[0] == 3 and 0 <= label < n_classes
    archive = root / archives.SOURCES[name][2]
    assert archive.read_bytes() == body                        # the verified archive is kept
    assert not [p for p in root.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_checksum_is_refused(name, tmp_path, monkeypatch, server):
    _serve(monkeypatch, server, name, build_archive(name, tmp_path), md5="0" * 32)
    root = tmp_path / "data"
    with pytest.raises(images.DatasetNotAvailable, match="md5") as e:
        D.load_dataset(name, EXPECTED[name][0], root=root)
    assert archives.SOURCES[name][1] in str(e.value)
    assert not root.exists() or not any(root.iterdir())       # nothing kept: no archive, no extracted folder


def test_truncated_archive_is_refused(tmp_path, monkeypatch, server):
    body = build_archive("cub200", tmp_path)
    _serve(monkeypatch, server, "cub200", body, prefix="/short")      # connection drops half-way
    with pytest.raises(images.DatasetNotAvailable, match="truncated|IncompleteRead|connection"):
        D.load_dataset("cub200", "train", root=tmp_path / "a")
    # a server that sends a short file honestly (correct length) is caught by the md5
    _serve(monkeypatch, server, "cub200", body[:len(body) // 2], md5=hashlib.md5(body).hexdigest())
    with pytest.raises(images.DatasetNotAvailable, match="md5"):
        D.load_dataset("cub200", "train", root=tmp_path / "b")


def test_damaged_archive_with_matching_md5_fails_cleanly(tmp_path, monkeypatch, server):
    body = build_archive("tinyimagenet", tmp_path)[:300]             # a broken zip whose md5 is "right"
    _serve(monkeypatch, server, "tinyimagenet", body)
    with pytest.raises(images.DatasetNotAvailable, match="cannot extract"):
        D.load_dataset("tinyimagenet", "val", root=tmp_path / "data")


# ------------------------------------------------------------------------------------------------ time-outs
def test_silent_server_times_out(tmp_path, monkeypatch, silent_server):
    t0 = time.monotonic()
    with pytest.raises(net.DownloadError, match="no answer within 0.5 s"):
        net.download(f"{silent_server}/x.tgz", tmp_path / "x.tgz", timeout=0.5)
    assert not net.reachable(silent_server, timeout=0.5)
    monkeypatch.setattr(vclip, "HUB_URL", silent_server)
    assert not vclip.hub_reachable(timeout=0.5)
    monkeypatch.setenv(net.TIMEOUT_ENV, "0.5")                   # the dataset path uses the same time-out
    folder, _, filename, md5 = archives.SOURCES["cub200"]
    monkeypatch.setitem(archives.SOURCES, "cub200", (folder, f"{silent_server}/{filename}", filename, md5))
    with pytest.raises(images.DatasetNotAvailable, match="no answer"):
        D.load_dataset("cub200", "train", root=tmp_path / "data")
    assert time.monotonic() - t0 < 60     # a hang would never get here; the bound only guards a broken time-out
    assert not list(tmp_path.rglob("*.tmp*"))


def test_reachable_counts_any_http_answer(server):
    base, _ = server
    assert net.reachable(base + "/missing", timeout=5)       # 404 is an answer


def test_offline_weights_message_gives_url_and_where(monkeypatch, silent_server):
    monkeypatch.setattr(vclip, "HUB_URL", silent_server)
    monkeypatch.setattr(net, "PROBE_TIMEOUT", 0.5)
    hub_cache = Path(__import__("tempfile").mkdtemp())
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    with pytest.raises(vclip.WeightsNotAvailable) as e:
        vclip.load_clip("ViT-B-32", "openai", device="cpu", cache_dir=str(hub_cache))
    msg = str(e.value)
    assert "vit_base_patch32_clip_224.openai/resolve/main/open_clip_pytorch_model.bin" in msg
    assert "--pretrained /path/to/file" in msg and "huggingface" in msg


# ------------------------------------------------------------------------------------------------ local CLIP file
@pytest.mark.parametrize("layout", ["state_dict", "training_checkpoint"])
def test_clip_from_local_checkpoint_file(tmp_path, layout):
    """open_clip's create_model(pretrained=<file>) path: a plain state_dict, or a training checkpoint
    {"epoch", "state_dict"} with DistributedDataParallel's "module." prefix."""
    torch.manual_seed(123)
    toyclip.register_local_configs()
    ref = open_clip.create_model(toyclip.TINY_MODEL)
    sd = ref.state_dict()
    path = tmp_path / "weights.pt"
    if layout == "state_dict":
        torch.save(sd, path)
    else:
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    clip = vclip.load_clip(toyclip.TINY_MODEL, str(path), device="cpu")
    assert clip.real and clip.pretrained == str(path)
    for k, v in clip.model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    other = vclip.load_clip(toyclip.TINY_MODEL, None, device="cpu")          # random weights differ
    assert not torch.equal(other.model.visual.proj, clip.model.visual.proj)


def test_clip_local_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(vclip.WeightsNotAvailable, match=f"{bad}: not an open_clip checkpoint"):
        vclip.load_clip(toyclip.TINY_MODEL, str(bad), device="cpu")


def test_download_shows_progress_in_bytes(tmp_path, server, capsys):
    base, files = server
    files["/big.bin"] = body = bytes(range(256)) * 4096                  # 1 MiB: the bar's total is that size
    net.download(f"{base}/big.bin", tmp_path / "big.bin", chunk=1 << 16)
    err = capsys.readouterr().err
    assert "downloading big.bin" in err and "1.00M/1.00M" in err and (tmp_path / "big.bin").read_bytes() == body
    net.download(f"{base}/big.bin", tmp_path / "quiet.bin", progress=False)
    assert capsys.readouterr().err == ""
