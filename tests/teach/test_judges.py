"""How a check judges an answer (vs2mini/teach/judges.py): the verdicts on given numbers (a hint per typical
mistake, never the expected value; stubs refused without raising) and the typed-answer helpers by hand. The checks
that compute the references from a reader's set-up: tests/teach/test_exercises.py (its docstring lists every
typical mistake)."""
from __future__ import annotations

import torch

from answers import STUBS, refuses, said  # tests/answers.py
from vs2mini.teach import judges


def test_as_number_by_hand():
    assert judges._as_number(2, "x") == 2.0 and judges._as_number(torch.tensor(2.5), "x") == 2.5
    assert "shape (2,)" in judges._as_number(torch.ones(2), "x")
    assert "not the string '3'" in judges._as_number("3", "x")
    assert "got bool" in judges._as_number(True, "x") and "got list" in judges._as_number([1], "x")
    assert "division by zero" in judges._as_number(float("inf"), "x")


def test_as_tensor_close_and_nan_hint():
    t = torch.ones(3, requires_grad=True)
    assert isinstance(judges._as_tensor(t, "m"), torch.Tensor) and not judges._as_tensor(t, "m").requires_grad
    assert "should be a torch.Tensor (m); got list" in judges._as_tensor([1.0], "m")
    assert judges._close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.00001]))
    assert not judges._close(torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 2.0]]))        # shapes differ
    assert not judges._close(torch.tensor([1.0]), torch.tensor([1.01]))
    assert "2 entries" in judges._nan_hint(torch.tensor([1.0, float("nan"), float("inf")]))
    assert judges._nan_hint(torch.tensor([1.0])) is None and judges._nan_hint(torch.tensor([1, 2])) is None


def test_report_prints_correct_or_the_hint(capsys):
    assert judges._report(True, "hint") is True and said(capsys) == "correct.\n"
    assert judges._report(False, "the hint") is False and said(capsys) == "the hint\n"


def test_ensemble_accuracy(capsys):
    judge = lambda a: judges.judge_ensemble_accuracy(a, 61.0, 63.5, acc_train=70.25, n_test=1000)
    assert judge(63.5) and said(capsys).startswith("correct")
    assert judge(torch.tensor(63.5)) and said(capsys).startswith("correct")
    assert "percent" in refuses(judge, 0.635, capsys, 63.5)
    assert "count" in refuses(judge, 635, capsys, 63.5)
    assert "single-template" in refuses(judge, 61.0, capsys, 63.5)
    assert "train split" in refuses(judge, 70.25, capsys, 63.5)
    assert "not the string" in refuses(judge, "63.50", capsys)     # the expected value as a string
    assert "division by zero" in refuses(judge, float("nan"), capsys, 63.5)
    for stub in STUBS:
        refuses(judge, stub, capsys, 63.5)
    generic = refuses(judge, 12.0, capsys, 63.5)
    assert "63.5" not in generic


def test_held_out_gain(capsys):
    gammas, lams = [1.25, 1.5], [1.0, 2.0]
    grid_a = torch.tensor([[50.0, 53.0], [52.0, 51.0]])     # best on A: (1.25, 2.0)
    grid_b = torch.tensor([[49.0, 51.0], [54.0, 50.0]])     # best on B: (1.5, 1.0)
    zs_a, zs_b, zs_all = 50.0, 49.5, 49.75
    judge = lambda a: judges.judge_held_out_gain(a, grid_a, grid_b, zs_a, zs_b, gammas, lams, zs_all=zs_all)
    assert judge((1.25, 2.0, 1.5)) and said(capsys).startswith("correct")
    assert judge([torch.tensor(1.25), 2, 1.5]) and said(capsys).startswith("correct")
    assert "tuned on the evaluation half" in refuses(judge, (1.5, 1.0, 4.5), capsys, 1.5)   # chosen on B
    assert "not the best on half A" in refuses(judge, (1.25, 1.0, -0.5), capsys, 1.5)
    assert "pair of the grid" in refuses(judge, (1.0, 2.0, 1.5), capsys, 1.5)
    assert "tuned on the evaluation data" in refuses(judge, (1.25, 2.0, 4.5), capsys, 1.5)
    assert "half A" in refuses(judge, (1.25, 2.0, 3.0), capsys, 1.5)
    assert "minus zero-shot" in refuses(judge, (1.25, 2.0, 51.0), capsys, 1.5)
    assert "whole test split" in refuses(judge, (1.25, 2.0, 1.25), capsys, 1.5)
    assert "wrong sign" in refuses(judge, (1.25, 2.0, -1.5), capsys, 1.5)
    assert "three numbers" in refuses(judge, 1.5, capsys, 1.5)                 # the gain alone
    assert "not the string" in refuses(judge, (1.25, 2.0, "1.50"), capsys)
    for stub in STUBS + [(0, 0, 0), (None, None, None), "1.25, 2.0, 1.5"]:
        refuses(judge, stub, capsys, 1.5)


def test_best_alpha(capsys):
    gammas, lams = [1.25, 1.5, 2.0], [1.0, 2.0]
    grid = torch.tensor([[50.0, 49.0], [49.0, 48.0], [47.0, 46.0]])   # best (1.25, 1.0): alpha 0.25
    judge = lambda a: judges.judge_best_alpha(a, grid, gammas, lams)
    assert judge(0.25) and said(capsys).startswith("correct")
    assert "lambda * gamma" in refuses(judge, 1.25, capsys)
    assert "best top-1" in refuses(judge, 50.0, capsys)
    assert "alone" in refuses(judge, 1.0, capsys)
    assert "worst" in refuses(judge, 2.0, capsys)
    assert "pair" in refuses(judge, (1.25, 1.0), capsys)
    for stub in STUBS + ["0.25"]:
        refuses(judge, stub, capsys)
