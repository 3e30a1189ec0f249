"""vs2mini.data against tiny fixtures in the real on-disk formats (built in tmp_path, see datasets_fixtures.py)."""
from __future__ import annotations

import urllib.error

import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms.functional import pil_to_tensor

import vs2mini.data as D
try:
    from datasets_fixtures import (CIFAR_PIXEL, CUB_IMAGES, TINY_TRAIN_PER_CLASS, TINY_VAL, TINY_WNIDS,
                                   TINY_WORDS, make_cifar100, make_cub, make_tiny)
except ImportError:  # tests/ imported as a package
    from tests.datasets_fixtures import (CIFAR_PIXEL, CUB_IMAGES, TINY_TRAIN_PER_CLASS, TINY_VAL, TINY_WNIDS,
                                         TINY_WORDS, make_cifar100, make_cub, make_tiny)
from vs2mini.data import DATASETS, EVAL_SPLIT, DatasetNotAvailable, ImageDataset, load_dataset


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt fails like it does offline."""
    def fail(url, *a, **k):
        raise urllib.error.URLError(f"offline test: no network for {url}")
    monkeypatch.setattr(D, "download_and_extract_archive", fail)


def assert_smoke_hint(msg: str):
    """The message points at the offline `toy` profile (once called `smoke`)."""
    assert "toy" in msg and "--profile toy" in msg and "VS2MINI_PROFILE=toy" in msg


# ------------------------------------------------------------------------------------------------ public API
def test_constants():
    from vs2mini.ood_datasets import OOD_DATASETS      # Table 3's shifted datasets (tested in test_ood_datasets.py)
    toy_res = ("toy-16px", "toy-12px", "toy-8px")      # the resolution-shift domains (tested in test_toy_resolution.py)
    assert tuple(d for d in DATASETS if d not in OOD_DATASETS) == ("cifar100", "cub200", "tinyimagenet", "toy",
                                                                    "toy-shifted") + toy_res
    assert {k: v for k, v in EVAL_SPLIT.items() if k not in OOD_DATASETS} == \
        {"cifar100": "test", "cub200": "test", "tinyimagenet": "val", "toy": "test", "toy-shifted": "test",
         **{d: "test" for d in toy_res}}


# -------------------------------------------------------------------------------------------------- CIFAR-100
def test_cifar_labels_names_and_pixels(tmp_path):
    raw = make_cifar100(tmp_path)
    ds = load_dataset("cifar100", "train", tmp_path, download=False)
    assert isinstance(ds, ImageDataset) and ds.name == "cifar100" and ds.split == "train" and not ds.synthetic
    assert ds.classnames == ["apple", "aquarium fish", "baby", "bear", "maple tree"]
    assert ds.raw_classnames == ["apple", "aquarium_fish", "baby", "bear", "maple_tree"]
    assert len(ds) == 50 and ds.labels.dtype == torch.int64
    assert ds.labels[:7].tolist() == [0, 1, 2, 3, 4, 0, 1]
    v, i, c, y, x = CIFAR_PIXEL
    img, label = ds[i]
    assert img.dtype == torch.uint8 and img.shape == (3, 32, 32) and label == 3
    assert int(img[c, y, x]) == v and int((img == v).sum()) == 1
    # row-major CHW: the whole image round-trips
    assert torch.equal(img.flatten(), torch.from_numpy(raw["train"][0][i]))
    test = load_dataset("cifar100", "test", tmp_path, download=False)
    assert len(test) == 20 and test.labels.tolist() == raw["test"][1]
    assert D.classnames("cifar100", tmp_path, download=False)[1] == "aquarium fish"


def test_default_root_from_env(tmp_path, monkeypatch):
    make_cifar100(tmp_path)
    monkeypatch.setenv("VS2MINI_DATA", str(tmp_path))
    assert len(load_dataset("cifar100", "test", download=False)) == 20


def test_cifar_bad_label(tmp_path):
    import pickle
    make_cifar100(tmp_path)
    f = tmp_path / "cifar-100-python" / "test"
    d = pickle.loads(f.read_bytes(), encoding="bytes")
    d[b"fine_labels"][4] = 7
    f.write_bytes(pickle.dumps(d, protocol=2))
    with pytest.raises(ValueError, match=r"cifar-100-python.test.*fine_labels\[4\] = 7 out of range"):
        load_dataset("cifar100", "test", tmp_path, download=False)


# ------------------------------------------------------------------------------------------------ limit
def test_limit_deterministic_subset(tmp_path):
    make_cifar100(tmp_path)
    full = load_dataset("cifar100", "train", tmp_path, download=False)
    a = load_dataset("cifar100", "train", tmp_path, download=False, limit=10, seed=3)
    b = load_dataset("cifar100", "train", tmp_path, download=False, limit=10, seed=3)
    c = load_dataset("cifar100", "train", tmp_path, download=False, limit=10, seed=4)
    assert len(a) == 10 and torch.equal(a.indices, b.indices) and torch.equal(a.images, b.images)
    assert not torch.equal(a.indices, c.indices)
    assert a.indices.tolist() == sorted(set(a.indices.tolist()))
    assert torch.equal(a.labels, full.labels[a.indices])
    for j, k in enumerate(a.indices.tolist()):
        assert torch.equal(a[j][0], full[k][0]) and a[j][1] == full[k][1]
    assert len(load_dataset("cifar100", "train", tmp_path, download=False, limit=10_000)) == 50
    fps = {a.fingerprint(), c.fingerprint(), full.fingerprint(),
           load_dataset("cifar100", "test", tmp_path, download=False, limit=10, seed=3).fingerprint()}
    assert len(fps) == 4 and a.fingerprint() == b.fingerprint()
    assert a.fingerprint().startswith("cifar100-train-10-s3-32px-n10-")


# ------------------------------------------------------------------------------------------------ CUB
def test_cub_split_labels_names(tmp_path):
    make_cub(tmp_path)
    names = ["Black footed Albatross", "Laysan Albatross", "Cardinal"]
    tr = load_dataset("cub200", "train", tmp_path, download=False, image_size=48)
    te = load_dataset("cub200", "test", tmp_path, download=False, image_size=48)
    assert tr.classnames == te.classnames == names == D.classnames("cub200", tmp_path, download=False)
    # ids 1, 3, 5, 7 are train; 2, 4, 6 test (train_test_split.txt); labels 0-based
    assert [f.name.split("_")[-2] for f in tr.files] == ["0001", "0003", "0005", "0007"]
    assert tr.labels.tolist() == [0, 1, 2, 2] and te.labels.tolist() == [0, 1, 2]
    batch = next(iter(torch.utils.data.DataLoader(tr, batch_size=4)))
    assert batch[0].shape == (4, 3, 48, 48) and batch[0].dtype == torch.uint8


@pytest.mark.parametrize("size", [224, 40])
def test_cub_resize_matches_open_clip_pil_pipeline(tmp_path, size):
    make_cub(tmp_path)
    ds = load_dataset("cub200", "test", tmp_path, download=False, image_size=size)
    ref = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)])
    for j, f in enumerate(ds.files):  # includes a grayscale and very non-square images
        img, _ = ds[j]
        with Image.open(f) as im:
            want = pil_to_tensor(ref(im).convert("RGB"))
        assert img.shape == (3, size, size) and img.dtype == torch.uint8 and torch.equal(img, want)
    assert any(CUB_IMAGES[i][3] == "L" for i in (2, 4, 6))


def test_cub_malformed(tmp_path):
    base = make_cub(tmp_path)
    f = base / "image_class_labels.txt"
    good = f.read_text()
    f.write_text(good.replace("4 2\n", "4 9\n"))
    with pytest.raises(ValueError, match=r"image_class_labels.txt:4: value 9 out of range \[1, 3\]"):
        load_dataset("cub200", "train", tmp_path, download=False)
    f.write_text(good.replace("4 2\n", "4\n"))
    with pytest.raises(ValueError, match=r"image_class_labels.txt:4: expected 2 fields"):
        load_dataset("cub200", "train", tmp_path, download=False)
    f.write_text(good.replace("4 2\n", "4 two\n"))
    with pytest.raises(ValueError, match=r"image_class_labels.txt:4: 'two' is not an integer"):
        load_dataset("cub200", "train", tmp_path, download=False)
    f.write_text(good)
    s = base / "train_test_split.txt"
    s.write_text(s.read_text().replace("2 0\n", "2 5\n"))
    with pytest.raises(ValueError, match=r"train_test_split.txt:2: value 5"):
        load_dataset("cub200", "train", tmp_path, download=False)


def test_cub_missing_image(tmp_path):
    base = make_cub(tmp_path)
    next((base / "images").rglob("*_0002_*.jpg")).unlink()
    with pytest.raises(DatasetNotAvailable, match="missing") as e:
        load_dataset("cub200", "test", tmp_path, download=False)
    assert_smoke_hint(str(e.value))


# ------------------------------------------------------------------------------------------------ Tiny-ImageNet
def test_tiny_train_val(tmp_path):
    make_tiny(tmp_path)
    names = ["goldfish", "European fire salamander", "golden retriever"]
    tr = load_dataset("tinyimagenet", "train", tmp_path, download=False)
    va = load_dataset("tinyimagenet", "val", tmp_path, download=False)
    assert tr.classnames == va.classnames == names == D.classnames("tinyimagenet", tmp_path, download=False)
    assert tr.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 and len(tr) == 3 * TINY_TRAIN_PER_CLASS
    assert [f.parent.parent.name for f in tr.files] == [w for w in TINY_WNIDS for _ in range(3)]
    # val labels come from val_annotations.txt, in label order of wnids.txt
    assert va.labels.tolist() == [2, 0, 1, 2, 0]
    assert [f.name for f in va.files] == list(TINY_VAL)
    for ds in (tr, va):
        for j in range(len(ds)):
            img, _ = ds[j]
            assert img.shape == (3, 64, 64) and img.dtype == torch.uint8  # grayscale JPEGs become RGB
    with Image.open(va.files[0]) as im:
        assert torch.equal(va[0][0], pil_to_tensor(im.convert("RGB")))


def test_tiny_val_reorganised_into_class_folders(tmp_path):
    # a popular script moves val/images/<f> to val/<wnid>/images/<f>; labels still come from val_annotations.txt
    base = make_tiny(tmp_path)
    for f, w in TINY_VAL.items():
        (base / "val" / w / "images").mkdir(parents=True, exist_ok=True)
        (base / "val" / "images" / f).rename(base / "val" / w / "images" / f)
    va = load_dataset("tinyimagenet", "val", tmp_path, download=False)
    assert va.labels.tolist() == [2, 0, 1, 2, 0]
    assert [f.parent.parent.name for f in va.files] == list(TINY_VAL.values())
    assert va[1][0].shape == (3, 64, 64)


def test_tiny_duplicate_first_synonym(tmp_path):
    wnids = ["n1", "n2", "n3", "n4"]
    words = {"n1": "maillot", "n2": "maillot, tank suit", "n3": "crane", "n4": "crane"}
    make_tiny(tmp_path, wnids=wnids, words=words, val={"val_0.JPEG": "n2"})
    names = D.classnames("tinyimagenet", tmp_path, download=False)
    assert names == ["maillot", "maillot, tank suit", "crane (n3)", "crane (n4)"]


def test_tiny_errors(tmp_path):
    base = make_tiny(tmp_path)
    with pytest.raises(ValueError, match='"val"') as e:
        load_dataset("tinyimagenet", "test", tmp_path, download=False)
    assert "train" in str(e.value) and "no labels" in str(e.value)
    ann = base / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace("val_3.JPEG\tn02099601", "val_3.JPEG\tn99999999"))
    with pytest.raises(ValueError, match=r"val_annotations.txt:4:"):
        load_dataset("tinyimagenet", "val", tmp_path, download=False)
    import shutil
    shutil.rmtree(base / "train" / TINY_WNIDS[1])
    with pytest.raises(DatasetNotAvailable, match=f"folder.*{TINY_WNIDS[1]}") as e:
        load_dataset("tinyimagenet", "train", tmp_path, download=False)
    assert_smoke_hint(str(e.value))
    words = base / "words.txt"
    words.write_text(words.read_text().replace("n01629819\t", "n01629819 "))
    with pytest.raises(ValueError, match=r"words.txt:2:"):
        load_dataset("tinyimagenet", "train", tmp_path, download=False)
    words.write_text("".join(f"{w}\t{s}\n" for w, s in TINY_WORDS.items() if w != "n02099601"))
    with pytest.raises(ValueError, match=r"words.txt: no synonyms for wnid n02099601"):
        load_dataset("tinyimagenet", "train", tmp_path, download=False)


# ------------------------------------------------------------------------------------------------ toy world
# (the generator and the toy datasets are tested in test_toyworld.py)
def test_toy_learnable_from_pixels():
    tr, te = load_dataset("toy", "train", limit=2400), load_dataset("toy", "test", limit=480)
    x, xt = tr.images.float().flatten(1), te.images.float().flatten(1)
    means = torch.stack([x[tr.labels == c].mean(0) for c in range(24)])
    acc = (torch.cdist(xt, means).argmin(1) == te.labels).float().mean().item()
    assert acc > 0.15, acc  # chance is 1/24; nuisance factors keep raw pixels far from perfect


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="cifar100.*cub200.*tinyimagenet.*toy"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"unknown split 'val' for cifar100.*\('train', 'test'\)"):
        load_dataset("cifar100", "val")
    with pytest.raises(ValueError, match="valid splits"):
        load_dataset("toy", "validation")
    with pytest.raises(ValueError, match="limit"):
        load_dataset("toy", limit=-1)


def test_picklable_for_dataloader_workers(tmp_path):
    import pickle
    make_cub(tmp_path)
    ds = load_dataset("cub200", "train", tmp_path, download=False, image_size=32)
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds2[1][0], ds[1][0]) and ds2.fingerprint() == ds.fingerprint()


@pytest.mark.parametrize("name,url,folder", [
    ("cifar100", "cifar-100-python.tar.gz", "cifar-100-python"),
    ("cub200", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz", "CUB_200_2011"),
    ("tinyimagenet", "http://cs231n.stanford.edu/tiny-imagenet-200.zip", "tiny-imagenet-200")])
@pytest.mark.parametrize("download", [False, True])
def test_missing_files_message(tmp_path, name, url, folder, download):
    split = EVAL_SPLIT[name]
    with pytest.raises(DatasetNotAvailable) as e:
        load_dataset(name, split, tmp_path, download=download)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert name in msg and url in msg and str(tmp_path / folder) in msg
    assert ("download failed: URLError" in msg) == download
    assert_smoke_hint(msg)
    with pytest.raises(FileNotFoundError, match="toy"):
        D.classnames(name, tmp_path, download=download)


def test_download_called_with_real_source(tmp_path, monkeypatch):
    calls = []

    def fake(url, download_root, filename=None, md5=None, **k):  # "succeeds" but leaves files missing
        calls.append((url, download_root, filename, md5))
    monkeypatch.setattr(D, "download_and_extract_archive", fake)
    with pytest.raises(DatasetNotAvailable, match="did not contain"):
        load_dataset("cifar100", "train", tmp_path)
    import torchvision
    c = torchvision.datasets.CIFAR100
    assert calls == [(c.url, str(tmp_path), c.filename, c.tgz_md5)]

    def extract(url, download_root, filename=None, md5=None, **k):  # a working download
        make_cifar100(download_root)
    monkeypatch.setattr(D, "download_and_extract_archive", extract)
    assert len(load_dataset("cifar100", "test", tmp_path / "new")) == 20
