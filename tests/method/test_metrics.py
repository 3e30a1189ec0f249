"""Accuracy metrics (vs2mini/method/metrics.py) on hand cases."""
from __future__ import annotations

import math

import pytest
import torch

from vs2mini.method import metrics

LABELS = torch.tensor([0, 0, 1, 1, 1, 2])
PREDS = torch.tensor([0, 1, 1, 1, 0, 1])        # correct: 0, 2, 3 -> 3 / 6


def test_top1_preds_and_logits():
    assert metrics.top1(PREDS, LABELS) == pytest.approx(50.0)
    logits = torch.nn.functional.one_hot(PREDS, 4).float() * 3 + 0.1 * torch.rand(6, 4)
    assert metrics.top1(logits, LABELS) == pytest.approx(50.0)
    assert metrics.top1(LABELS, LABELS) == 100.0


def test_top1_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.top1(PREDS[:5], LABELS)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.top1(torch.zeros(5, 3), LABELS)
    with pytest.raises(ValueError, match="no samples"):
        metrics.top1(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))


def test_per_class_accuracy_with_absent_class():
    acc = metrics.per_class_accuracy(PREDS, LABELS, n_classes=4)
    # class 0: 1/2, class 1: 2/3, class 2: 0/1, class 3: absent
    assert acc[:3].tolist() == pytest.approx([50.0, 200 / 3, 0.0])
    assert math.isnan(acc[3].item())


def test_class_gains_ordering():
    before = torch.tensor([50., 60., 70., 80., float("nan")])
    after = torch.tensor([70., 55., 70., 90., float("nan")])     # deltas +20, -5, 0, +10, nan
    names = ["a", "b", "c", "d", "e"]
    gains, losses = metrics.class_gains(before, after, names, top=2)
    assert [g[0] for g in gains] == ["a", "d"]
    assert gains[0] == ("a", 50.0, 70.0, 20.0)
    assert losses[0] == ("b", 60.0, 55.0, -5.0)
    assert [r[0] for r in losses][0] == "b"


def test_confusion_matrix_and_most_confused():
    cm = metrics.confusion_matrix(PREDS, LABELS, 3)
    want = torch.tensor([[1, 1, 0],
                         [1, 2, 0],
                         [0, 1, 0]])
    assert torch.equal(cm, want)
    assert cm.sum().item() == 6 and torch.trace(cm).item() == 3
    names = ["cat", "dog", "fox"]
    conf = metrics.most_confused(PREDS, LABELS, names, top=10)
    assert sorted(conf) == sorted([("cat", "dog", 1), ("dog", "cat", 1), ("fox", "dog", 1)])
    # the most frequent error comes first
    labels = torch.tensor([0, 0, 0, 1, 2])
    preds = torch.tensor([2, 2, 1, 1, 0])
    top2 = metrics.most_confused(preds, labels, names, top=2)
    assert top2[0] == ("cat", "fox", 2)
    assert top2[1] in [("cat", "dog", 1), ("fox", "cat", 1)]            # a tie at count 1: either may come second
    assert metrics.most_confused(labels, labels, names) == []        # no errors, no pairs


def test_errors_within_groups():
    # errors: (true 0 -> 1), (true 1 -> 0), (true 2 -> 1); groups {0, 1} and {2}: 2 of 3 errors stay in the group
    assert metrics.errors_within_groups(PREDS, LABELS, torch.tensor([0, 0, 1])) == pytest.approx(200 / 3)
    assert metrics.errors_within_groups(PREDS, LABELS, torch.tensor([0, 1, 2])) == 0.0
    assert metrics.errors_within_groups(LABELS, LABELS, torch.tensor([0, 0, 1])) is None     # no errors


def test_accuracy_top_k_hand_case():
    logits = torch.tensor([[0.9, 0.5, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.2, 0.1, 0.8]])
    labels = torch.tensor([1, 2, 0, 1])
    # top-1 hits: row 1 only; top-2 hits: rows 0, 1, 2; top-3: all
    assert metrics.accuracy(logits, labels) == metrics.top1(logits, labels) == 25.0
    assert metrics.accuracy(logits, labels, k=2) == 75.0
    assert metrics.accuracy(logits, labels, k=3) == metrics.accuracy(logits, labels, k=10) == 100.0
    with pytest.raises(ValueError, match="top-2 needs logits"):
        metrics.accuracy(labels, labels, k=2)
