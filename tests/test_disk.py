"""Checksummed tensor cache (vs2mini/disk.py): round trip, compute-once, corruption detection and recovery."""
from __future__ import annotations

import logging

import pytest
import torch

from vs2mini import disk as cache

META = {"model": "m", "dataset": "d", "split": "train", "version": 1}


def tensors():
    g = torch.Generator().manual_seed(0)
    return {"cls": torch.randn(5, 4, generator=g), "labels": torch.arange(5), "img": torch.arange(12, dtype=torch.uint8)}


def assert_same(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return tensors()


def test_save_load_round_trip(tmp_path):
    path = cache.save_tensors(tmp_path / "a" / "x.pt", tensors(), META)
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]            # no temp file left behind
    assert_same(cache.load_tensors(path, META), tensors())
    assert_same(cache.load_tensors(path), tensors())                     # meta check is optional
    with pytest.raises(FileNotFoundError):
        cache.load_tensors(tmp_path / "missing.pt")


def test_cached_computes_once_then_loads(tmp_path):
    path, compute = tmp_path / "x.pt", Counter()
    first = cache.cached(path, META, compute)
    second = cache.cached(path, META, compute)
    assert compute.calls == 1
    assert_same(first, second)
    assert_same(second, tensors())


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_tensor_byte(path):
    """Change one value of a stored tensor but keep the stored checksums (silent data damage)."""
    payload = torch.load(path, weights_only=True)
    t = payload["tensors"]["cls"].clone()
    t.view(torch.uint8)[3] ^= 0x10
    payload["tensors"]["cls"] = t
    torch.save(payload, path)


def garbage(path):
    path.write_bytes(b"this is not a torch file \x00\xff" * 20)


def wrong_meta(path):
    cache.save_tensors(path, tensors(), {**META, "split": "test"})


def wrong_format(path):
    payload = torch.load(path, weights_only=True)
    payload["format"] = 999
    torch.save(payload, path)


def missing_checksum(path):
    payload = torch.load(path, weights_only=True)
    del payload["checksums"]["labels"]
    torch.save(payload, path)


@pytest.mark.parametrize("damage", [truncate, flip_tensor_byte, garbage, wrong_meta, wrong_format, missing_checksum])
def test_bad_file_detected_moved_aside_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "x.pt"
    cache.save_tensors(path, tensors(), META)
    damage(path)
    bad_bytes = path.read_bytes()
    with pytest.raises(cache.CorruptCache):
        cache.load_tensors(path, META)
    compute = Counter()
    with caplog.at_level(logging.WARNING, logger="vs2mini.disk"):
        out = cache.cached(path, META, compute)
    assert compute.calls == 1                                            # recomputed
    assert_same(out, tensors())
    assert_same(cache.load_tensors(path, META), tensors())               # and the rebuilt file is good
    aside = list(tmp_path.glob("x.pt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad_bytes        # the bad file still exists, unchanged
    assert any(r.levelno == logging.WARNING and "recomputing" in r.getMessage() for r in caplog.records)


def test_two_bad_files_in_the_same_second_are_both_kept(tmp_path, monkeypatch):
    """The module promises bad files are moved aside, never deleted; two in a row must not overwrite each other."""
    monkeypatch.setattr(cache.time, "strftime", lambda fmt, *a: "20260101-120000")   # same timestamp twice
    path = tmp_path / "x.pt"
    contents = []
    for i in range(2):
        path.write_bytes(f"garbage {i}".encode())
        contents.append(path.read_bytes())
        cache.cached(path, META, Counter())
        path.unlink()
    kept = sorted(p.read_bytes() for p in tmp_path.glob("x.pt.corrupt-*"))
    assert kept == sorted(contents)


def test_cache_key_stable_and_sensitive():
    parts = dict(model="ViT-B-32", dataset="cifar100", split="train", weights="openai", n=3)
    key = cache.cache_key(**parts)
    assert key == cache.cache_key(**dict(reversed(list(parts.items()))))   # order of arguments does not matter
    assert key == cache.cache_key(**parts)
    assert key.startswith("ViT-B-32_cifar100_train_")
    for name, other in (("model", "ViT-B-16"), ("dataset", "cub200"), ("split", "test"), ("weights", None),
                        ("n", 4)):
        assert cache.cache_key(**{**parts, name: other}) != key, name
    assert cache.cache_key(**parts, extra=1) != key
    odd = cache.cache_key(model="a/b c:d", dataset="x")
    assert "/" not in odd and " " not in odd and ":" not in odd


def test_one_atomic_write_and_one_file_digest(tmp_path):
    import hashlib

    from vs2mini import disk
    path = disk.atomic_write_text(tmp_path / "sub" / "out.json", "hello\n")
    assert path.read_text() == "hello\n" and [p.name for p in path.parent.iterdir()] == ["out.json"]   # no temp left
    a, b = disk.unique_tmp(path), disk.unique_tmp(path)
    assert a != b and a.parent == path.parent and a.name.startswith("out.json.tmp")
    assert disk.file_digest(path, "md5") == hashlib.md5(b"hello\n").hexdigest()
    assert disk.sha256_file(path) == hashlib.sha256(b"hello\n").hexdigest()
