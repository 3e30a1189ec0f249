"""The dataset registry (vs2mini/data/registry.py): the one name check, splits, class names without images."""
from __future__ import annotations

import pytest
import torch

from vs2mini.data import toyworld
from vs2mini.data.ood import OOD_DATASETS
from vs2mini.data.registry import DATASETS, EVAL_SPLIT, SPLITS, check_name, classnames, superclasses


def test_check_name_accepts_known_names_and_splits():
    for name in DATASETS:
        assert check_name(name) == name and check_name(name, EVAL_SPLIT[name]) == name
        assert EVAL_SPLIT[name] in SPLITS[name] and "train" in SPLITS[name]
    assert set(OOD_DATASETS) < set(DATASETS)


@pytest.mark.parametrize("name, split, message", [
    ("imagenet", None, r"unknown dataset 'imagenet'; choose one of \("),
    ("cifar100", "val", r"unknown split 'val' for cifar100; valid splits: \('train', 'test'\)$"),
    ("tinyimagenet", "test", r"its \"test\" split has no labels; use split=\"val\""),
])
def test_check_name_errors_say_what_to_do(name, split, message):
    with pytest.raises(ValueError, match=message):
        check_name(name, split)


def test_superclasses_only_for_the_toy_world():
    assert torch.equal(superclasses("toy"), torch.from_numpy(toyworld.CLASS_SUPER))
    assert torch.equal(superclasses("toy-shifted"), superclasses("toy"))
    assert superclasses("cifar100") is None
    assert classnames("toy") == list(toyworld.CLASSNAMES) and len(set(superclasses("toy").tolist())) == 6
