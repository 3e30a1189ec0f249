"""Datasets are validated as they load: clear errors naming the file, never a worker traceback (issue 10, point 5
and the empty-file messages of point 10)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from datasets_fixtures import TINY_WNIDS, make_cifar100, make_cub, make_tiny
from vs2mini.clip import models as vclip
from vs2mini.data.images import BadImageFile
from vs2mini.data.registry import load_dataset
from vs2mini.clip.features import extract_features


def _cifar(tmp_path, edit):
    make_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    edit(d)
    path.write_bytes(pickle.dumps(d, protocol=2))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update({b"fine_labels": d[b"fine_labels"][:-1]}), "49 labels for 50 images"),
    (lambda d: d.update({b"fine_labels": [float(v) for v in d[b"fine_labels"]]}), "list of integers"),
    (lambda d: d.update({b"data": np.asarray(d[b"data"], dtype=np.float32)}), "uint8"),
    (lambda d: d.update({b"data": np.asarray(d[b"data"])[:, :100]}), r"\(N, 3072\)"),
    (lambda d: d.update({b"fine_labels": [7] + d[b"fine_labels"][1:]}), r"fine_labels\[0\] = 7 out of range"),
    (lambda d: d.pop(b"fine_labels"), "not a CIFAR-100 python pickle"),
])
def test_cifar_faults(tmp_path, edit, message):
    path = _cifar(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as e:
        load_dataset("cifar100", "train", root=tmp_path, download=False)
    assert str(path) in str(e.value)


def test_cifar_truncated_pickle(tmp_path):
    make_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a CIFAR-100 python pickle") as e:
        load_dataset("cifar100", "train", root=tmp_path, download=False)
    assert str(path) in str(e.value)


def test_tiny_duplicate_and_empty_wnids(tmp_path):
    make_tiny(tmp_path, wnids=TINY_WNIDS + [TINY_WNIDS[0]])
    with pytest.raises(ValueError, match=r"wnids.txt: duplicate wnid 'n01443537'"):
        load_dataset("tinyimagenet", "train", root=tmp_path, download=False)
    (tmp_path / "tiny-imagenet-200" / "wnids.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"wnids.txt is empty"):
        load_dataset("tinyimagenet", "train", root=tmp_path, download=False)


def test_tiny_empty_class_and_appledouble(tmp_path):
    base = make_tiny(tmp_path)
    folder = base / "train" / TINY_WNIDS[1] / "images"
    (folder / f"._{TINY_WNIDS[0]}_0.JPEG").write_bytes(b"\x00\x05\x16\x07Mac OS X        ")   # AppleDouble
    ds = load_dataset("tinyimagenet", "train", root=tmp_path, download=False)
    assert not any(f.name.startswith("._") for f in ds.files) and len(ds) == 9
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=f"class {TINY_WNIDS[1]} has no images"):
        load_dataset("tinyimagenet", "train", root=tmp_path, download=False)


def test_cub_empty_class_duplicate_id_empty_classes_file(tmp_path):
    base = make_cub(tmp_path)
    labels = (base / "image_class_labels.txt").read_text()
    (base / "image_class_labels.txt").write_text(labels.replace("5 3", "5 2").replace("6 3", "6 2")
                                                 .replace("7 3", "7 2"))
    with pytest.raises(ValueError, match=r"image_class_labels.txt: class 3 \(Cardinal\) has no images"):
        load_dataset("cub200", "train", root=tmp_path, download=False)
    (base / "image_class_labels.txt").write_text(labels)
    images = (base / "images.txt").read_text()
    (base / "images.txt").write_text(images + images.splitlines()[0] + "\n")
    with pytest.raises(ValueError, match=r"images.txt: duplicate image id '1'"):
        load_dataset("cub200", "train", root=tmp_path, download=False)
    (base / "images.txt").write_text(images)
    (base / "classes.txt").write_text("")
    with pytest.raises(ValueError, match=r"classes.txt is empty"):
        load_dataset("cub200", "train", root=tmp_path, download=False)


def test_cub_empty_split(tmp_path):
    base = make_cub(tmp_path)
    split = base / "train_test_split.txt"
    split.write_text("".join(f"{line.split()[0]} 1\n" for line in split.read_text().splitlines()))
    with pytest.raises(ValueError, match=r"the test split .* has no images"):
        load_dataset("cub200", "test", root=tmp_path, download=False)


def test_zero_byte_image_named_up_front(tmp_path):
    base = make_cub(tmp_path)
    victim = sorted((base / "images").rglob("*.jpg"))[0]
    victim.write_bytes(b"")
    with pytest.raises(BadImageFile, match="empty") as e:
        for split in ("train", "test"):
            load_dataset("cub200", split, root=tmp_path, download=False)
    assert str(victim) in str(e.value)


@pytest.fixture(scope="module")
def tiny_clip():
    return vclip.load_clip("vs2mini-tiny", pretrained=None, device="cpu")


@pytest.mark.parametrize("damage", ["truncated", "not_an_image", "appledouble_listed"])
@pytest.mark.parametrize("workers", [0, 2])
def test_bad_image_named_without_worker_traceback(tmp_path, tiny_clip, damage, workers):
    base = make_cub(tmp_path)
    ds = load_dataset("cub200", "train", root=tmp_path, download=False, image_size=32)
    victim = ds.files[2]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:200])
    elif damage == "not_an_image":
        victim.write_text("<html>404 not found</html>")
    else:
        victim.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64)
    with pytest.raises(BadImageFile) as e:
        extract_features(tiny_clip, ds, batch_size=2, num_workers=workers, progress=False)
    msg = str(e.value)
    assert msg.startswith(str(victim)) and "Traceback" not in msg and "worker" not in msg
    assert len(msg.splitlines()) == 1
    assert base.exists()
