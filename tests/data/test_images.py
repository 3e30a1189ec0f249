"""Labelled uint8 image datasets and image decoding (vs2mini/data/images.py): `load_image` on hand-made files,
the error that names the file, `ImageDataset` items and cache keys, the seeded subset, `check_images`."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms.functional import pil_to_tensor

from datasets_fixtures import make_cub
from vs2mini.data import images as data
from vs2mini.data.registry import load_dataset

PIXELS = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)   # (H, W, 3)


def test_load_image_decodes_exactly(tmp_path):
    # a lossless 2x2 PNG comes back as uint8 (3, H, W) with the same pixels; grey and RGBA become RGB
    Image.fromarray(PIXELS).save(tmp_path / "rgb.png")
    img = data.load_image(tmp_path / "rgb.png")
    assert img.dtype == torch.uint8 and torch.equal(img, torch.from_numpy(PIXELS).permute(2, 0, 1))
    Image.fromarray(np.array([[0, 128], [200, 255]], dtype=np.uint8), "L").save(tmp_path / "grey.png")
    grey = data.load_image(tmp_path / "grey.png")
    assert grey.shape == (3, 2, 2) and torch.equal(grey[0], grey[2]) and grey[1].tolist() == [[0, 128], [200, 255]]
    rgba = np.concatenate([PIXELS, np.full((2, 2, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.equal(data.load_image(tmp_path / "rgba.png"), img)


def test_load_image_resizes_like_open_clip(tmp_path):
    # size: shortest side to `size` (PIL bicubic), then the centre crop, as open_clip's eval transform
    arr = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "wide.png")
    out = data.load_image(tmp_path / "wide.png", size=16)
    want = pil_to_tensor(T.CenterCrop(16)(T.Resize(16, interpolation=T.InterpolationMode.BICUBIC)(
        Image.fromarray(arr))))
    assert out.shape == (3, 16, 16) and torch.equal(out, want)


@pytest.mark.parametrize("content", [b"", b"<html>404 not found</html>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_bad_file_names_the_file(tmp_path, content):
    bad = tmp_path / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(data.BadImageFile) as e:
        data.load_image(bad)
    msg = str(e.value)
    assert msg.startswith(str(bad)) and "re-extract" in msg and "AppleDouble" not in msg
    dot = tmp_path / "._broken.png"                                  # macOS metadata file: say so
    dot.write_bytes(content)
    with pytest.raises(data.BadImageFile, match=r"AppleDouble.*-name '\._\*' -delete"):
        data.load_image(dot)


def test_image_dataset_items_and_fingerprint():
    imgs = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).view(2, 3, 2, 2)
    ds = data.ImageDataset("toy", "test", ["a", "b"], [1, 0], images=imgs, image_size=2)
    assert len(ds) == 2 and ds[1][1] == 0 and isinstance(ds[1][1], int) and torch.equal(ds[1][0], imgs[1])
    fp = ds.fingerprint()
    assert fp.startswith("toy-test-all-s0-2px-n2-") and len(fp.rsplit("-", 1)[1]) == 8
    same = data.ImageDataset("toy", "test", ["a", "b"], [1, 0], images=imgs.clone(), image_size=2)
    assert same.fingerprint() == fp                                  # a key of the content, not of the object
    changed = imgs.clone()
    changed[0, 0, 0, 0] += 1                                         # one pixel
    assert data.ImageDataset("toy", "test", ["a", "b"], [1, 0], images=changed, image_size=2).fingerprint() != fp
    assert data.ImageDataset("toy", "test", ["a", "b"], [0, 0], images=imgs, image_size=2).fingerprint() != fp


def test_image_dataset_reads_files_lazily(tmp_path):
    Image.fromarray(PIXELS).save(tmp_path / "a.png")
    calls = []
    loader = lambda p: calls.append(p) or data.load_image(p)    # noqa: E731
    ds = data.ImageDataset("x", "train", ["a"], [0], files=[tmp_path / "a.png"], loader=loader)
    assert calls == []                                               # nothing decoded until asked
    assert torch.equal(ds[0][0], torch.from_numpy(PIXELS).permute(2, 0, 1)) and calls == [tmp_path / "a.png"]


def test_subset_is_seeded_sorted_and_all_when_not_limited():
    assert torch.equal(data._subset(5, None, 0), torch.arange(5))
    assert torch.equal(data._subset(5, 5, 0), torch.arange(5)) and torch.equal(data._subset(5, 9, 0), torch.arange(5))
    a, b, c = data._subset(100, 10, 3), data._subset(100, 10, 3), data._subset(100, 10, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(a) == 10 and len(set(a.tolist())) == 10 and torch.equal(a, a.sort().values)
    assert 0 <= int(a.min()) and int(a.max()) < 100


def test_check_images_without_files_is_a_no_op():
    data.check_images(data.ImageDataset("toy", "test", ["a"], [0], images=torch.zeros(1, 3, 2, 2, dtype=torch.uint8)))


def test_check_images_passes_good_files_and_names_bad_ones(tmp_path):
    make_cub(tmp_path)
    ds = load_dataset("cub200", "train", root=tmp_path)
    data.check_images(ds)                                       # intact fixture: no error
    victim = ds.files[-1]
    victim.write_bytes(victim.read_bytes()[:2] + b"garbage")    # a JPEG marker, then nothing a decoder can read
    with pytest.raises(data.BadImageFile, match=f"1 of {len(ds.files)}.*{victim.name}"):
        data.check_images(ds)
