"""The one writer (vs2mini.disk): atomic placement, one-line errors for full / read-only / forbidden disks, no
temporary file left behind, exclusive claims; and every output path of the package goes through it."""
from __future__ import annotations

import errno
import json
import os
import threading

import pytest
import torch

from vs2mini import disk
from vs2mini import cache
from vs2mini.cli import main
from vs2mini.method.sae import TopKSAE
from vs2mini.method.sae_file import save_sae


def _fail_with(code):
    def write_all(fd, data):
        os.write(fd, data[: len(data) // 2])               # half a file, then the disk is full
        raise OSError(code, os.strerror(code))
    return write_all


def test_write_round_trip_leaves_only_the_file(tmp_path):
    p = disk.write_json(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1}
    assert os.listdir(p.parent) == ["r.json"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission denied")])
def test_disk_errors_are_one_line_and_leave_no_temporary(tmp_path, monkeypatch, code, words):
    target = tmp_path / "r.json"
    target.write_text("old")
    monkeypatch.setattr(disk, "_write_all", _fail_with(code))
    with pytest.raises(disk.OutputError) as e:
        disk.write_json(target, {"x": 1})
    msg = str(e.value)
    assert "\n" not in msg and str(target) in msg and words in msg and e.value.errno == code
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]


def test_failed_placement_leaves_no_temporary(tmp_path, monkeypatch):
    def deny(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(disk.os, "replace", deny)
    with pytest.raises(disk.OutputError, match="permission denied"):
        disk.write_text(tmp_path / "r.txt", "x")
    assert os.listdir(tmp_path) == []


def test_exclusive_never_replaces(tmp_path):
    p = tmp_path / "o.bin"
    disk.write_bytes(p, b"first", exclusive=True)
    with pytest.raises(disk.OutputExists, match="already exists"):
        disk.write_bytes(p, b"second", exclusive=True)
    assert p.read_bytes() == b"first" and os.listdir(tmp_path) == ["o.bin"]
    disk.write_bytes(p, b"third")                           # not exclusive (--force): replaced
    assert p.read_bytes() == b"third"


def test_concurrent_exclusive_writers_one_wins(tmp_path):
    p, results = tmp_path / "o.bin", []

    def run(i):
        try:
            disk.write_bytes(p, bytes([i]) * 1000, exclusive=True)
            results.append(("ok", i))
        except disk.OutputExists:
            results.append(("exists", i))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [i for kind, i in results if kind == "ok"]
    assert len(winners) == 1 and p.read_bytes() == bytes(winners) * 1000
    assert os.listdir(tmp_path) == ["o.bin"]


def test_exclusive_without_hard_links_still_claims(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(disk.os, "link", no_links)
    p = tmp_path / "o.bin"
    disk.write_bytes(p, b"first", exclusive=True)
    with pytest.raises(disk.OutputExists):
        disk.write_bytes(p, b"second", exclusive=True)
    assert p.read_bytes() == b"first" and os.listdir(tmp_path) == ["o.bin"]


def test_sae_save_full_disk_is_an_output_error(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "_write_all", _fail_with(errno.ENOSPC))
    with pytest.raises(disk.OutputError, match="no space"):
        save_sae(TopKSAE(4, 8, 2), tmp_path / "s.pt")
    assert os.listdir(tmp_path) == []


def test_full_cache_disk_keeps_the_computed_result(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(disk, "_write_all", _fail_with(errno.ENOSPC))
    t = cache.cached(tmp_path / "c.pt", {"a": 1}, lambda: {"x": torch.arange(3)})
    assert torch.equal(t["x"], torch.arange(3)) and "not cached" in caplog.text
    assert os.listdir(tmp_path) == []


def test_cli_json_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys, toy_setup):
    monkeypatch.setattr(disk, "_write_all", _fail_with(errno.ENOSPC))
    out = tmp_path / "z.json"
    assert main(["zeroshot", "--profile", "toy", "--quiet", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(out) in err and "no space" in err
    assert os.listdir(tmp_path) == []


def test_figures_go_through_the_writer(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from vs2mini.teach import diagrams
    monkeypatch.setattr(disk, "_write_all", _fail_with(errno.ENOSPC))
    with pytest.raises(disk.OutputError, match="no space"):
        diagrams.save_book_figures(tmp_path)
    assert os.listdir(tmp_path) == []


def test_closed_pipe_exits_quietly(toy_setup):
    """`python -m vs2mini zeroshot | head -0`: the reader is gone before the first byte; no traceback, rc 141."""
    import subprocess
    import sys
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([sys.executable, "-m", "vs2mini", "zeroshot", "--profile", "toy", "--quiet"], stdout=w,
                       stderr=subprocess.PIPE, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    os.close(w)
    assert p.returncode == 141 and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
