"""Odd cache locations, stale temp files, concurrent readers, intact-but-wrong files (issue 10, points 8 and 10)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import torch

from vs2mini import disk as cache
from vs2mini.config import cache_root

META = {"model": "m", "dataset": "d", "split": "train"}


def _tensors():
    return {"cls": torch.arange(12.0).view(4, 3), "labels": torch.arange(4)}


def test_unwritable_cache_keeps_the_result_with_one_clear_line(tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    calls = []
    with caplog.at_level(logging.WARNING, logger="vs2mini.disk"):
        out = cache.cached(blocker / "x.pt", META, lambda: calls.append(1) or _tensors())
    assert calls == [1] and torch.equal(out["cls"], _tensors()["cls"])      # computed result returned, not lost
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and str(blocker / "x.pt") in lines[0] and "$VS2MINI_CACHE" in lines[0]


def test_empty_env_means_default(monkeypatch):
    from vs2mini.config import user_cache
    monkeypatch.setenv("VS2MINI_CACHE", "")
    assert cache_root() == user_cache() / "features" and cache_root().is_absolute()


def test_stale_tmp_files_of_dead_processes_are_cleaned(tmp_path):
    path = tmp_path / "x.pt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)                   # that process has exited
    stale = [tmp_path / f"x.pt.tmp{dead_pid}", tmp_path / f"x.pt.tmp{dead_pid}-0a1b2c3d"]
    live = tmp_path / f"x.pt.tmp{os.getppid()}-deadbeef"             # a live writer (our parent process)
    other = tmp_path / "y.pt.tmp1"                                    # another file's temp: not ours to judge
    for f in stale + [live, other]:
        f.write_bytes(b"partial")
    cache.cached(path, META, _tensors)
    assert not any(f.exists() for f in stale)
    assert live.exists() and other.exists() and path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.pt", live.name, other.name])


def test_concurrent_readers_of_a_corrupt_file(tmp_path, monkeypatch):
    """Many threads find the same damaged file: all of them get the right tensors, none crashes."""
    path = tmp_path / "x.pt"
    cache.save_tensors(path, _tensors(), META)
    path.write_bytes(path.read_bytes()[:200])              # a write cut short
    real_load, barrier = cache.load_tensors, threading.Barrier(6)

    def slow_load(p, meta=None):             # everyone has seen the file before anyone moves it aside
        barrier.wait(timeout=10)
        return real_load(p, meta)

    monkeypatch.setattr(cache, "load_tensors", slow_load)
    results, errors = [], []

    def slow_compute():                       # every reader has judged the file before the first rebuild lands
        time.sleep(0.3)
        return _tensors()

    def run():
        try:
            results.append(cache.cached(path, META, slow_compute))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) == 6 and all(torch.equal(r["cls"], _tensors()["cls"]) for r in results)
    assert len(list(tmp_path.glob("x.pt.corrupt-*"))) == 1
    monkeypatch.setattr(cache, "load_tensors", real_load)
    assert torch.equal(cache.load_tensors(path, META)["cls"], _tensors()["cls"])


def test_intact_file_with_wrong_rows_is_rebuilt(tmp_path, caplog):
    path = tmp_path / "x.pt"
    cache.save_tensors(path, {"cls": torch.zeros(3, 3), "labels": torch.arange(3)}, META)   # checksum-valid

    def check(t):
        if len(t["labels"]) != 4:
            raise cache.CorruptCache(f"{path}: holds {len(t['labels'])} rows for a dataset of 4")

    with caplog.at_level(logging.WARNING, logger="vs2mini.disk"):
        out = cache.cached(path, META, _tensors, check)
    assert len(out["labels"]) == 4 and "3 rows for a dataset of 4" in caplog.text
    assert len(cache.load_tensors(path, META)["labels"]) == 4          # the next run loads it: no repeated failure
    assert len(list(tmp_path.glob("x.pt.corrupt-*"))) == 1


def test_feature_cache_with_wrong_row_count_is_rebuilt(tmp_path):
    from vs2mini.clip import models as vclip
    from vs2mini.data.registry import load_dataset
    from vs2mini.clip.features import cached_features
    tiny = vclip.load_clip("vs2mini-tiny", pretrained=None, device="cpu")
    ds = load_dataset("toy", "test", limit=6)
    first = cached_features(tiny, ds, num_workers=0, progress=False, root=tmp_path)
    (f,) = tmp_path.glob("*.pt")
    cache.save_tensors(f, {"cls": first.cls[:5], "emb": first.emb[:5], "labels": first.labels[:5]},
                       torch.load(f, weights_only=True)["meta"])           # intact file, one row short
    again = cached_features(tiny, ds, num_workers=0, progress=False, root=tmp_path)
    assert torch.equal(again.cls, first.cls)
    assert torch.equal(cached_features(tiny, ds, num_workers=0, progress=False, root=tmp_path).cls, first.cls)
