"""Tiny on-disk copies of CIFAR-100, CUB-200-2011 and Tiny-ImageNet in their real formats, built at test time.

Each builder writes under `root` exactly the layout the real archive extracts to and returns the
hand-written facts the tests check against.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_NAMES = ["apple", "aquarium_fish", "baby", "bear", "maple_tree"]
# (value, image index, channel, y, x) written into the train pickle
CIFAR_PIXEL = (201, 3, 2, 5, 7)


def make_cifar100(root: Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict:
    """<root>/cifar-100-python/{train,test,meta}: pickled dicts with bytes keys, data (N, 3072) uint8 CHW."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 200, (n, 3072), dtype=np.uint8)  # < 200 so the marker pixel is unique
        fine = [int(v) for v in np.arange(n) % len(CIFAR_NAMES)]
        if split == "train":
            v, i, c, y, x = CIFAR_PIXEL
            data[i, c * 1024 + y * 32 + x] = v
        d = {b"filenames": [f"img_{k}.png".encode() for k in range(n)], b"batch_label": split.encode(),
             b"fine_labels": fine, b"coarse_labels": [0] * n, b"data": data}
        with open(base / split, "wb") as f:
            pickle.dump(d, f, protocol=2)
        out[split] = (data, fine)
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [n.encode() for n in CIFAR_NAMES],
                     b"coarse_label_names": [b"fruit_and_vegetables"]}, f, protocol=2)
    return out


CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "017.Cardinal"]
# id: (class id 1-based, is_train, (width, height), mode)
CUB_IMAGES = {1: (1, 1, (50, 40), "RGB"), 2: (1, 0, (37, 61), "RGB"), 3: (2, 1, (64, 64), "L"),
              4: (2, 0, (80, 30), "RGB"), 5: (3, 1, (45, 45), "RGB"), 6: (3, 0, (33, 70), "L"),
              7: (3, 1, (60, 52), "RGB")}


def make_cub(root: Path, seed: int = 0) -> Path:
    """<root>/CUB_200_2011/{images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, images/}."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "CUB_200_2011"
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    for i, (cid, is_train, (w, h), mode) in CUB_IMAGES.items():
        cls = CUB_CLASSES[cid - 1]
        rel = f"{cls}/{cls.split('.', 1)[1]}_{i:04d}_{100 + i}.jpg"
        (base / "images" / cls).mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
        Image.fromarray(arr, mode).save(base / "images" / rel, quality=90)
        lines["images.txt"].append(f"{i} {rel}")
        lines["image_class_labels.txt"].append(f"{i} {cid}")
        lines["train_test_split.txt"].append(f"{i} {is_train}")
    lines["classes.txt"] = [f"{k + 1} {c}" for k, c in enumerate(CUB_CLASSES)]
    for name, ls in lines.items():
        (base / name).write_text("\n".join(ls) + "\n")
    return base


TINY_WNIDS = ["n01443537", "n01629819", "n02099601"]
TINY_WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander, Salamandra",
              "n02099601": "golden retriever", "n00001740": "entity", "n09999999": "unused, extra wnid"}
# val file -> wnid
TINY_VAL = {"val_0.JPEG": "n02099601", "val_1.JPEG": "n01443537", "val_2.JPEG": "n01629819",
            "val_3.JPEG": "n02099601", "val_4.JPEG": "n01443537"}
TINY_TRAIN_PER_CLASS = 3


def make_tiny(root: Path, wnids=TINY_WNIDS, words=TINY_WORDS, val=TINY_VAL, seed: int = 0) -> Path:
    """<root>/tiny-imagenet-200/{wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/...}, 64x64 JPEGs."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "tiny-imagenet-200"

    def img(path: Path, gray: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (64, 64) if gray else (64, 64, 3), dtype=np.uint8)
        Image.fromarray(arr, "L" if gray else "RGB").save(path)

    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    (base / "words.txt").write_text("".join(f"{w}\t{s}\n" for w, s in words.items()))
    for w in wnids:
        (base / "train" / w / f"{w}_boxes.txt").parent.mkdir(parents=True, exist_ok=True)
        (base / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(TINY_TRAIN_PER_CLASS):
            img(base / "train" / w / "images" / f"{w}_{i}.JPEG", gray=(i == 1))
    for k, (fname, w) in enumerate(val.items()):
        img(base / "val" / "images" / fname, gray=(k == 2))
    (base / "val" / "val_annotations.txt").write_text(
        "".join(f"{f}\t{w}\t0\t32\t44\t62\n" for f, w in val.items()))
    (base / "test" / "images").mkdir(parents=True, exist_ok=True)
    return base
