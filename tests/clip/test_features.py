"""The feature cache key covers the image content, not only labels and indices (issue 10, point 4)."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from datasets_fixtures import make_cifar100, make_cub
from vs2mini.clip import models as vclip
from vs2mini.data.registry import load_dataset
from vs2mini.clip.features import cached_features


@pytest.fixture(scope="module")
def tiny():
    return vclip.load_clip("vs2mini-tiny", pretrained=None, device="cpu")


def test_blackened_cub_images_get_new_features(tmp_path, tiny):
    base = make_cub(tmp_path / "data")
    cache = tmp_path / "cache"
    ds = load_dataset("cub200", "test", root=tmp_path / "data", image_size=32)
    before = cached_features(tiny, ds, batch_size=4, num_workers=0, progress=False, root=cache)
    for f in (base / "images").rglob("*.jpg"):           # every image blackened, same size, same names
        with Image.open(f) as im:
            size, mode = im.size, im.mode
        Image.new(mode, size).save(f, quality=90)
    ds2 = load_dataset("cub200", "test", root=tmp_path / "data", image_size=32)
    after = cached_features(tiny, ds2, batch_size=4, num_workers=0, progress=False, root=cache)
    assert ds2.fingerprint() != ds.fingerprint()
    assert not torch.allclose(after.cls, before.cls)
    fresh = cached_features(tiny, ds2, batch_size=4, num_workers=0, progress=False, root=tmp_path / "fresh")
    assert torch.equal(after.cls, fresh.cls)                 # the new features are those of the new images
    assert len(list(cache.glob("*.pt"))) == 2


def test_same_size_and_mtime_change_is_caught_by_the_sampled_hash(tmp_path):
    base = make_cub(tmp_path / "data")
    ds = load_dataset("cub200", "train", root=tmp_path / "data")
    key = ds.fingerprint()
    f = ds.files[0]
    st = f.stat()
    raw = bytearray(f.read_bytes())
    raw[-10] ^= 0xFF                                          # same length, one byte different
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))          # and the old modification time
    ds2 = load_dataset("cub200", "train", root=tmp_path / "data")
    assert ds2.fingerprint() != key
    assert base.exists()


def test_in_memory_pixel_change_changes_the_key(tmp_path):
    make_cifar100(tmp_path / "data")
    a = load_dataset("cifar100", "test", root=tmp_path / "data")
    assert load_dataset("cifar100", "test", root=tmp_path / "data").fingerprint() == a.fingerprint()   # stable
    path = tmp_path / "data" / "cifar-100-python" / "test"
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    d[b"data"] = np.array(d[b"data"])
    d[b"data"][7, 100] ^= 1                                  # one pixel of one image, labels unchanged
    path.write_bytes(pickle.dumps(d, protocol=2))
    b = load_dataset("cifar100", "test", root=tmp_path / "data")
    assert torch.equal(a.labels, b.labels) and b.fingerprint() != a.fingerprint()
