"""Run profiles and paths (vs2mini/config.py): k by backbone, overrides, the toy label, the data and cache roots."""
from __future__ import annotations

from pathlib import Path

import pytest

from vs2mini.config import PROFILES, TOY_BANNER, cache_root, data_root, get_profile, user_cache


def test_k_by_backbone_and_explicit_k_wins():
    full = PROFILES["full"]
    assert full.sae.k is None
    assert [full.k_for(m) for m in ("ViT-B-32-quickgelu", "ViT-B-16", "ViT-B-16-quickgelu", "ViT-L-14", "RN50")] == \
        [64, 256, 256, 128, 64]
    assert PROFILES["toy"].k_for("ViT-B-16") == 8                       # the toy profile's explicit k


def test_overrides_replace_only_what_is_given():
    p = get_profile("lite", k=5, lr=None)                                # None: keep the profile's value
    assert (p.sae.k, p.train.lr, p.name) == (5, PROFILES["lite"].train.lr, "lite") and PROFILES["lite"].sae.k is None
    assert get_profile("lite") is PROFILES["lite"]                       # no override: the profile itself


def test_settings_are_grouped_and_set_by_unique_field_names():
    from dataclasses import fields
    from vs2mini.config import GROUPS, Profile
    names = [f.name for g in GROUPS for f in fields(getattr(PROFILES["toy"], g))]
    assert len(names) == len(set(names))                                 # Profile.set finds each name's group
    p = PROFILES["toy"].set(gamma=3.0, q=0.5, variant="ratio", epochs=2, n_train=10, datasets=("toy-8px",))
    assert (p.steer.gamma, p.gate.q, p.pass_.variant, p.train.epochs, p.data.n_train, p.datasets) == \
        (3.0, 0.5, "ratio", 2, 10, ("toy-8px",))
    toy = PROFILES["toy"]                                                # everything else as it was
    assert (p.steer.lam, p.train.lr, p.sae, p.tables) == (toy.steer.lam, toy.train.lr, toy.sae, toy.tables)
    assert toy.steer.gamma != 3.0 and toy.set() is toy and toy.set(gamma=None) is toy
    with pytest.raises(ValueError, match="unknown profile setting 'gama'.*gamma"):
        toy.set(gama=2.0)
    assert {f.name for f in fields(Profile)} >= set(GROUPS)


def test_toy_label_only_for_toy_runs():
    assert PROFILES["toy"].banner == TOY_BANNER and "NOT A REAL RESULT" in TOY_BANNER
    assert TOY_BANNER not in PROFILES["full"].banner and "full" in PROFILES["full"].banner


def test_roots_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VS2MINI_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("VS2MINI_CACHE", "")                              # empty: the default
    assert data_root() == tmp_path / "d" and cache_root() == user_cache() / "features"
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")
