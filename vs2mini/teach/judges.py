"""How the exercise checks judge an answer (vs2mini/teach/exercises.py computes each reference from the reader's
own inputs): typed answers only (a number, a tensor), a hint per typical mistake, never the expected value."""
from __future__ import annotations

import math

import torch


NOT_ATTEMPTED = "not attempted yet: replace `answer = None` with your code and run the cell again."


def _report(ok: bool, hint: str) -> bool:
    print("correct." if ok else hint)
    return ok


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.double().cpu(), b.double().cpu(), rtol=rtol, atol=atol)


def _as_number(answer, what: str) -> float | str:
    """The answer as a finite float, or the hint to print when it is not one (a string, a list, a NaN, a bool)."""
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            return f"`answer` should be one number ({what}); got a tensor of shape {tuple(answer.shape)}."
        answer = answer.item()
    if isinstance(answer, str):
        return (f"`answer` should be a number ({what}), not the string {answer!r}: store the value your code "
                "computes, not its printed text.")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) and not hasattr(answer, "__float__"):
        return f"`answer` should be a number ({what}); got {type(answer).__name__}."
    value = float(answer)
    if not math.isfinite(value):
        return f"`answer` is {value}: look for a division by zero or an empty selection ({what})."
    return value


def _as_tensor(answer, name: str) -> torch.Tensor | str:
    """The answer as a tensor, or the hint to print when it is not one."""
    if isinstance(answer, torch.Tensor):
        return answer.detach()
    return f"`answer` should be a torch.Tensor ({name}); got {type(answer).__name__}."


def _nan_hint(answer: torch.Tensor) -> str | None:
    if answer.is_floating_point() and not torch.isfinite(answer).all():
        n = int((~torch.isfinite(answer)).sum())
        return f"hint: {n} entries of your answer are NaN or inf: look for a division by zero (an empty set?)."
    return None


# ---------------------------------------------------------------------------------------------- notebook 1
def judge_ensemble_accuracy(answer, acc_single: float, acc_reference: float, acc_train: float | None = None,
                            n_test: int | None = None) -> bool:
    """The verdict of `check_ensemble_accuracy`: `acc_single` is the 1-template top-1 (%), `acc_reference` the
    18-template top-1 (%) on the test split, `acc_train` the same on the train split, `n_test` the test size."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_number(answer, "the top-1 accuracy in percent")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    if abs(answer - acc_reference) < 1e-3:
        return _report(True, "")
    if abs(100 * answer - acc_reference) < 1e-1:
        return _report(False, "hint: that looks like a fraction; report top-1 in percent, as metrics.top1 does.")
    if n_test and abs(answer - acc_reference * n_test / 100) < 0.5:
        return _report(False, "hint: that is a count of correct images; report top-1 in percent.")
    if abs(answer - acc_single) < 1e-3 and abs(acc_single - acc_reference) > 1e-3:
        return _report(False, "hint: that is the single-template accuracy: build the head with "
                              "zeroshot_head(setup.clip, setup.classnames, \"cifar18\") and use it for the logits.")
    if acc_train is not None and abs(answer - acc_train) < 1e-3:
        return _report(False, "hint: that is the accuracy on the train split; use the test tokens setup.test.cls.")
    return _report(False, "hint: not the 18-template top-1. Compute the logits from the CLS tokens with "
                          "cls_to_logits(setup.clip, setup.test.cls, head18), then metrics.top1(logits, labels).")


# ---------------------------------------------------------------------------------------------- notebook 2
def judge_held_out_gain(answer, grid_a: torch.Tensor, grid_b: torch.Tensor, zs_a: float, zs_b: float,
                        gammas, lams, zs_all: float | None = None) -> bool:
    """The verdict of `check_held_out_gain`. grid_a, grid_b: (G, L) top-1 (%) on halves A and B; zs_*: zero-shot
    on A, B and (optional) the whole test split. Any pair tied for A's best is accepted, with its own gain on B."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    if isinstance(answer, str) or not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return _report(False, "hint: `answer` should be three numbers, (gamma, lambda, gain on B): the pair you "
                              "chose on half A and its gain on half B.")
    parsed = [_as_number(v, "gamma, lambda and the gain") for v in answer]
    bad = next((v for v in parsed if isinstance(v, str)), None)
    if bad is not None:
        return _report(False, "hint: " + bad)
    g, l, gain = parsed
    cell = next(((i, j) for i, gi in enumerate(gammas) for j, lj in enumerate(lams)
                 if abs(gi - g) < 1e-9 and abs(lj - l) < 1e-9), None)
    if cell is None:
        return _report(False, "hint: (gamma, lambda) should be a pair of the grid ex_gammas x ex_lams.")
    best_a = grid_a.max().item()
    if abs(grid_a[cell].item() - best_a) > 1e-9:
        if abs(grid_b[cell].item() - grid_b.max().item()) < 1e-9:
            return _report(False, "hint: that pair is the best on half B: you tuned on the evaluation half. Choose "
                                  "(gamma, lambda) on half A (the first len(y) // 2 indices of the permutation).")
        return _report(False, "hint: that pair is not the best on half A; check the split (seed 0, A first) and "
                              "the argmax over the whole grid.")
    reference = grid_b[cell].item() - zs_b
    if abs(gain - reference) < 1e-3:
        return _report(True, "")
    if abs(gain - (grid_b.max().item() - zs_b)) < 1e-3:
        return _report(False, "hint: that is the best gain on half B itself, i.e. tuned on the evaluation data; "
                              "report the gain of the pair you chose on A.")
    if abs(gain - (grid_a[cell].item() - zs_a)) < 1e-3:
        return _report(False, "hint: that is the gain on half A, where you tuned; report the same pair's gain on B.")
    if abs(gain - grid_b[cell].item()) < 1e-3:
        return _report(False, "hint: that is B's top-1; the answer is the gain, top-1 minus zero-shot on half B.")
    if zs_all is not None and abs(gain - (grid_b[cell].item() - zs_all)) < 1e-3:
        return _report(False, "hint: subtract half B's own zero-shot top-1, not the whole test split's.")
    if abs(gain + reference) < 1e-3:
        return _report(False, "hint: wrong sign: the gain is VS2's top-1 minus zero-shot's.")
    return _report(False, "hint: the pair is right; the gain is not. Evaluate that pair on half B only and subtract "
                          "B's zero-shot top-1.")


# ---------------------------------------------------------------------------------------------- notebook 5
def judge_best_alpha(answer, grid: torch.Tensor, gammas, lams) -> bool:
    """The verdict of `check_best_alpha`. grid: (G, L) top-1 (%). Cells with the same alpha tie, so any best cell
    gives the same alpha; if two different alphas tie for the best, either is accepted."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        return _report(False, "hint: that looks like a (gamma, lambda) pair; report alpha = lambda (gamma - 1) as "
                              "one number.")
    answer = _as_number(answer, "alpha = lambda (gamma - 1)")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    best = grid.max().item()
    cells = [(i, j) for i in range(len(gammas)) for j in range(len(lams))]
    alpha = {c: lams[c[1]] * (gammas[c[0]] - 1) for c in cells}
    winners = [c for c in cells if abs(grid[c].item() - best) < 1e-9]
    if any(abs(answer - alpha[c]) < 1e-6 for c in winners):
        return _report(True, "")
    if any(abs(answer - lams[j] * gammas[i]) < 1e-6 for i, j in winners):
        return _report(False, "hint: that is lambda * gamma, the paper's band variable; the exercise asks for "
                              "alpha = lambda (gamma - 1).")
    if abs(answer - best) < 1e-6:
        return _report(False, "hint: that is the best top-1; report the alpha of the cell where it occurs.")
    if any(abs(answer - gammas[i]) < 1e-9 or abs(answer - lams[j]) < 1e-9 for i, j in winners):
        return _report(False, "hint: that is gamma or lambda alone; combine them as alpha = lambda (gamma - 1).")
    worst = grid.min().item()
    if any(abs(answer - alpha[c]) < 1e-6 for c in cells if abs(grid[c].item() - worst) < 1e-9):
        return _report(False, "hint: that is the worst cell; look for the highest top-1.")
    return _report(False, "hint: not the best cell's alpha: sweep the grid, take the cell with the highest top-1 "
                          "and compute lambda (gamma - 1) there.")


# ---------------------------------------------------------------------------------------------- notebook 4
