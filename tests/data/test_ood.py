"""The six OOD datasets of Table 3 (vs2mini/data/ood.py): tiny fixtures in the on-disk layouts torchvision
expects (Food-101, EuroSAT, Caltech-101, FGVC-Aircraft), and the missing-dataset error for all six."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vs2mini.data import ood as ood_datasets
from vs2mini.data.registry import DATASETS, EVAL_SPLIT, classnames, load_dataset
from vs2mini.data.images import DatasetNotAvailable


def jpg(path: Path, colour: tuple[int, int, int], size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path, quality=100)


def make_food101(root: Path) -> None:
    """<root>/food-101/{meta/train.json, meta/test.json, images/<class>/<id>.jpg}."""
    base = root / "food-101"
    meta = {"train": {"apple_pie": ["apple_pie/1", "apple_pie/2"], "sushi": ["sushi/3"]},
            "test": {"apple_pie": ["apple_pie/4"], "sushi": ["sushi/5", "sushi/6"]}}
    (base / "meta").mkdir(parents=True)
    for split, m in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(m))
        for cls, items in m.items():
            for it in items:
                jpg(base / "images" / f"{it}.jpg", (200, 10, 10) if cls == "apple_pie" else (10, 10, 200))


def make_eurosat(root: Path, per_class: int = 5) -> None:
    """<root>/eurosat/2750/<Class>/<Class>_<i>.jpg (an ImageFolder)."""
    for c, colour in (("AnnualCrop", (0, 200, 0)), ("SeaLake", (0, 0, 200))):
        for i in range(per_class):
            jpg(root / "eurosat" / "2750" / c / f"{c}_{i}.jpg", colour, (64, 64))


def make_caltech101(root: Path) -> None:
    """<root>/caltech101/101_ObjectCategories/<category>/image_<%04d>.jpg, with the BACKGROUND_Google folder."""
    base = root / "caltech101" / "101_ObjectCategories"
    for c, n in (("BACKGROUND_Google", 2), ("Faces_easy", 3), ("accordion", 2)):
        for i in range(1, n + 1):
            jpg(base / c / f"image_{i:04d}.jpg", (i * 40, 0, 0))


def make_aircraft(root: Path) -> None:
    """<root>/fgvc-aircraft-2013b/data/{variants.txt, images_variant_{trainval,test}.txt, images/<id>.jpg}."""
    data = root / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\nA300B4\n")
    (data / "images_variant_trainval.txt").write_text("0001 707-320\n0002 A300B4\n0003 A300B4\n")
    (data / "images_variant_test.txt").write_text("0004 707-320\n")
    for i in range(1, 5):
        jpg(data / "images" / f"{i:04d}.jpg", (0, 50 * i, 0))


def test_registered_in_data():
    assert set(ood_datasets.OOD_DATASETS) <= set(DATASETS)
    assert all(EVAL_SPLIT[n] == "test" for n in ood_datasets.OOD_DATASETS)
    with pytest.raises(ValueError, match="unknown split 'val' for food101"):
        load_dataset("food101", "val")


def test_food101_official_split_and_names(tmp_path):
    make_food101(tmp_path)
    tr = load_dataset("food101", "train", tmp_path, download=False)
    te = load_dataset("food101", "test", tmp_path, download=False)
    assert tr.classnames == ["apple pie", "sushi"] and len(tr) == 3 and len(te) == 3
    assert te.labels.tolist() == [0, 1, 1]
    img, y = te[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 224, 224) and y == 0
    assert img[0].float().mean() > 150 and img[2].float().mean() < 60          # the red apple-pie fixture
    assert classnames("food101", tmp_path, download=False) == ["apple pie", "sushi"]


def test_eurosat_seeded_80_20_split(tmp_path):
    make_eurosat(tmp_path)
    tr = load_dataset("eurosat", "train", tmp_path, download=False)
    te = load_dataset("eurosat", "test", tmp_path, download=False)
    assert tr.classnames == ["Annual Crop", "Sea Lake"]
    assert (len(tr), len(te)) == (8, 2)
    assert not set(map(str, tr.files)) & set(map(str, te.files))               # disjoint, together everything
    again = load_dataset("eurosat", "test", tmp_path, download=False)
    assert again.files == te.files                                              # the same split every run


def test_caltech101_drops_background_and_aircraft_uses_trainval(tmp_path):
    make_caltech101(tmp_path)
    make_aircraft(tmp_path)
    tr = load_dataset("caltech101", "train", tmp_path, download=False)
    te = load_dataset("caltech101", "test", tmp_path, download=False)
    assert tr.classnames == ["Faces easy", "accordion"] and len(tr) + len(te) == 5
    assert all("BACKGROUND" not in str(f) for f in tr.files + te.files)
    air = load_dataset("aircraft", "train", tmp_path, download=False)
    assert air.classnames == ["707-320", "A300B4"] and air.labels.tolist() == [0, 1, 1]
    assert load_dataset("aircraft", "test", tmp_path, download=False).labels.tolist() == [0]


@pytest.mark.parametrize("name", ood_datasets.OOD_DATASETS)
def test_missing_dataset_says_how_to_get_it(name, tmp_path):
    with pytest.raises(DatasetNotAvailable) as e:
        load_dataset(name, "test", tmp_path, download=False)
    msg = str(e.value)
    folder = ood_datasets.TORCHVISION[name][1]
    assert name in msg and str(tmp_path / folder) in msg and "download=True" in msg and "offline" in msg


def test_missing_image_file_is_named(tmp_path):
    make_food101(tmp_path)
    (tmp_path / "food-101" / "images" / "sushi" / "5.jpg").unlink()
    with pytest.raises(DatasetNotAvailable, match="5.jpg"):
        load_dataset("food101", "test", tmp_path, download=False)
