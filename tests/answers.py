"""Helpers for the tests of the exercise checks (tests/teach/test_exercises.py, test_judges.py): what a check
printed, and a refusal that never shows the expected value. tests/ is on sys.path (conftest.py)."""
from __future__ import annotations


def said(capsys) -> str:
    return capsys.readouterr().out


def refuses(check, answer, capsys, expected: float | None = None) -> str:
    """The check returns False for `answer`, prints a hint, and never prints `expected` (to 2 decimals)."""
    assert check(answer) is False, answer
    out = said(capsys)
    assert out.strip() and not out.startswith("correct")
    if expected is not None:
        assert f"{expected:.2f}" not in out, out
    return out


STUBS = [None, 0, 0.0, "", "0", [], [0.0], float("nan"), True, {}]
