"""The toy world (vs2mini/data/toyworld.py), its dataset entries, the shipped toy CLIP's weights record and the `toy`
profile (the toy CLIP's pretraining: tests/clip/test_pretrain.py)."""
from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import torch

from vs2mini.clip import pretrain
from vs2mini import disk
from vs2mini.clip import toyclip
from vs2mini.data import toyworld as tw
from vs2mini.data.registry import DATASETS, EVAL_SPLIT, classnames, load_dataset
from vs2mini.config import PROFILE_ENV, get_profile


# ------------------------------------------------------------------------------------------------ generator
def test_render_deterministic_prefix_and_keyed():
    a, la, ca = tw.render("base", "train", 120)
    b, lb, cb = tw.render("base", "train", 120)
    assert a.shape == (120, 3, 32, 32) and a.dtype == np.uint8 and la.dtype == np.int64
    assert np.array_equal(a, b) and np.array_equal(la, lb) and ca == cb
    p, lp, cp = tw.render("base", "train", 30)                 # image i depends only on (seed, domain, split, i)
    assert np.array_equal(p, a[:30]) and np.array_equal(lp, la[:30]) and cp == ca[:30]
    others = [tw.render("base", "test", 120)[0], tw.render("shifted", "train", 120)[0],
              tw.render("base", "train", 120, seed=1)[0]]
    for o in others:                                           # every key part changes every image
        assert all(not np.array_equal(o[i], a[i]) for i in range(120))
    assert tw.render("base", "test", 0)[0].shape == (0, 3, 32, 32)


def test_render_bad_arguments():
    with pytest.raises(ValueError, match="domain 'night'"):
        tw.render("night", "train", 4)
    with pytest.raises(ValueError, match="split 'val'"):
        tw.render("base", "val", 4)
    with pytest.raises(ValueError, match="n must be >= 0"):
        tw.render("base", "train", -1)


def test_classes_and_superclasses():
    names = tw.CLASSNAMES
    assert len(names) == 24 == len(set(names)) and len(tw.SUPERCLASSES) == 6
    for s, (colour, shapes) in enumerate(tw.SUPERCLASSES.items()):
        assert len(shapes) == 4 == len(set(shapes))
        members = [c for c in range(24) if tw.superclass_of(c) == s]
        assert [names[c] for c in members] == [f"{colour} {shape}" for shape in shapes]
    assert np.array_equal(tw.superclass_of(np.arange(24)), [tw.superclass_of(c) for c in range(24)])
    # every shape appears in 4 super-classes: the shape words are not a proxy for the colour
    assert sorted(sum((list(v) for v in tw.SUPERCLASSES.values()), [])) == sorted(list(tw.SHAPES) * 4)


def test_balanced_labels():
    _, labels, _ = tw.render("base", "train", 24 * 7 + 5)
    counts = np.bincount(labels, minlength=24)
    assert counts.tolist() == [8] * 5 + [7] * 19
    assert tw.SPLIT_SIZE["train"] >= 10_000 and tw.SPLIT_SIZE["test"] >= 2_000
    assert tw.SPLIT_SIZE["train"] % 24 == 0 == tw.SPLIT_SIZE["test"] % 24


def test_captions_follow_templates():
    _, labels, caps = tw.render("base", "train", 480)
    _, _, shifted = tw.render("shifted", "test", 96)
    words = {"size": "(small|medium|big)", "bg": "(dark|light|striped)"}
    patterns = []
    for t in tw.CAPTION_TEMPLATES:
        body = re.escape(t[:-1]).replace(r"\{name\}", "(?P<name>[a-z]+ [a-z]+)")
        for k, v in words.items():
            body = body.replace(r"\{" + k + r"\}", v)
        patterns.append(re.compile(f"^{body}(\\.|,{re.escape(tw.OCCLUDED_SUFFIX)})$"))
    used = set()
    for cap, y in zip(caps, labels):
        hits = [k for k, p in enumerate(patterns) if p.match(cap)]
        assert len(hits) >= 1, cap
        assert patterns[hits[0]].match(cap)["name"] == tw.CLASSNAMES[y], cap
        used.update(hits)
    assert used == set(range(len(tw.CAPTION_TEMPLATES)))                 # every template is drawn
    assert 0.2 < np.mean([c.endswith(tw.OCCLUDED_SUFFIX) for c in caps]) < 0.45     # a third are occluded
    assert all("striped" in c for c in shifted if "background" in c)
    assert not any("striped" in c for c in caps)


def test_object_has_the_class_colour():
    """The most saturated pixels of each image have a hue near the class's hue (noise and lighting move it)."""
    images, labels, _ = tw.render("base", "test", 240)
    x = images.astype(float) / 255
    mx, mn = x.max(1), x.min(1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    hits = 0
    for img, s, y in zip(x, sat, labels):
        top = s.flatten().argsort()[-12:]                                  # the 12 most saturated pixels
        r, g, b = (img[c].flatten()[top].mean() for c in range(3))
        hue = math.degrees(math.atan2(math.sqrt(3) * (g - b), 2 * r - g - b)) % 360
        dist = abs((hue - tw.CLASS_HUE[y] + 180) % 360 - 180)
        hits += dist < 30
    assert hits / len(labels) > 0.85, hits


# ------------------------------------------------------------------------------------------------ datasets
def test_toy_datasets_registered():
    assert {"toy", "toy-shifted"} <= set(DATASETS)
    assert EVAL_SPLIT["toy"] == EVAL_SPLIT["toy-shifted"] == "test"
    te = load_dataset("toy", "test", limit=48)
    sh = load_dataset("toy-shifted", "test", limit=48)
    assert te.name == "toy" and sh.name == "toy-shifted" and te.synthetic and sh.synthetic
    assert te.classnames == sh.classnames == tw.CLASSNAMES == classnames("toy") == classnames("toy-shifted")
    assert torch.equal(te.labels, sh.labels) and not torch.equal(te.images, sh.images)
    images, labels, caps = tw.render("base", "test", 48)
    assert torch.equal(te.images, torch.from_numpy(images)) and te.captions == caps
    assert te.fingerprint() != sh.fingerprint() != load_dataset("toy", "train", limit=48).fingerprint()
    with pytest.raises(ValueError, match=r"unknown dataset 'synthetic'; choose one of .*'toy'"):
        load_dataset("synthetic", "test", limit=48)                    # the old name of an unreleased package: gone
    with pytest.raises(ValueError, match="valid splits"):
        load_dataset("toy", "val")


# ------------------------------------------------------------------------------------------------ toy CLIP
def test_shipped_weights_match_their_record_and_the_code():
    record = json.loads(toyclip.META_FILE.read_text())
    assert record["sha256"] == disk.sha256_file(toyclip.WEIGHTS_FILE)
    assert record["config"] == asdict(pretrain.PretrainConfig())        # `pretrain-toy` rebuilds this file
    assert toyclip.WEIGHTS_FILE.stat().st_size < 3 * 2**20


def test_damaged_weights_are_refused(tmp_path):
    bad = tmp_path / toyclip.WEIGHTS_FILE.name
    shutil.copy(toyclip.WEIGHTS_FILE, bad)
    shutil.copy(toyclip.META_FILE, bad.with_suffix(".json"))
    data = bytearray(bad.read_bytes())
    data[-10] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(toyclip.ToyWeightsError, match="SHA-256.*pretrain-toy"):
        toyclip.load_toy_weights(toyclip.build_model()[0], bad)
    bad.with_suffix(".json").unlink()
    with pytest.raises(toyclip.ToyWeightsError, match="not found"):
        toyclip.load_toy_weights(toyclip.build_model()[0], bad)


# ------------------------------------------------------------------------------------------------ profiles
def test_profile_selection(monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert get_profile().name == "toy"
    p = get_profile("toy")
    assert p.model == "vs2mini-toyclip" and p.pretrained == "toy" and p.datasets == ("toy",) and not p.real
    with pytest.raises(ValueError, match=r"unknown profile 'smoke'; choose one of \['full', 'lite', 'toy'\]"):
        get_profile("smoke")                                           # the old name of an unreleased package: gone
    monkeypatch.setenv(PROFILE_ENV, "toy")
    assert get_profile().name == "toy"
    monkeypatch.setenv(PROFILE_ENV, "lite")
    assert get_profile().name == "lite" and get_profile("toy").name == "toy"
    assert "toy CLIP pretrained by vs2mini on synthetic images" in p.banner and "not the paper" in p.banner
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")
