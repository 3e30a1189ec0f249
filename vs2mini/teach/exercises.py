"""Check functions for the notebooks' exercises: compare the reader's answer with the reference and print a hint.

Every check returns True when the answer is right and prints one line: "correct", "not attempted yet" (the answer is
still None) or a hint aimed at the most likely mistake. A check never raises on a wrong answer (a string, a list, a
NaN, a wrong shape all get a hint), and it never prints the expected value: a reader can only pass by computing it.
The reference always comes from the package's own functions, recomputed from the reader's own inputs, so the
exercises and the rest of vs2mini cannot drift apart. The typical mistakes each check recognises are listed in
tests/test_exercises.py.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ..method import pass_loss, retrieval, steer
from .judges import (NOT_ATTEMPTED, _as_number, _as_tensor, _close, _nan_hint, _report, judge_best_alpha,
                     judge_ensemble_accuracy, judge_held_out_gain)


def check_ensemble_accuracy(answer, setup) -> bool:
    """Notebook 1: top-1 (%) on the test split of the 18-template head ("cifar18"), from the cached CLS tokens."""
    from ..clip.features import cls_to_logits
    from ..clip.models import zeroshot_head
    from ..method.metrics import top1
    if answer is None:      # before the reference: it encodes 1,800 prompts (minutes on a CPU)
        return _report(False, NOT_ATTEMPTED)
    head18 = zeroshot_head(setup.clip, setup.classnames, "cifar18")
    reference = top1(cls_to_logits(setup.clip, setup.test.cls, head18).cpu(), setup.test.labels)
    on_train = top1(cls_to_logits(setup.clip, setup.train.cls, head18).cpu(), setup.train.labels)
    return judge_ensemble_accuracy(answer, setup.accuracy(setup.test.cls), reference, on_train,
                                   n_test=len(setup.test.labels))


def check_per_sample_fvu(answer, x: torch.Tensor, sae, mu: torch.Tensor) -> bool:
    """Notebook 2: FVU(x) = ||x_tilde - x||^2 / ||x - mu||^2 per token. x: (N, d), mu: (d,) training mean."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "one FVU per token, shape (N,)")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    ref = steer.per_sample_fvu(x, sae, mu)
    if answer.ndim == 0:
        return _report(False, f"hint: one value per token, shape ({len(x)},); you returned one number "
                              "(did you sum over tokens as well as over dimensions?).")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected shape {tuple(ref.shape)}, got {tuple(answer.shape)}; "
                              "sum the squares over the feature dimension only (dim=-1).")
    if (nan := _nan_hint(answer)) is not None:
        return _report(False, nan)
    if _close(answer, ref):
        return _report(True, "")
    with torch.no_grad():
        x = x.to(sae.device)
        err = (sae.reconstruct(x) - x).pow(2).sum(-1)
        batch_mean = err / (x - x.mean(0)).pow(2).sum(-1)
        no_square = (sae.reconstruct(x) - x).norm(dim=-1) / (x - mu.to(x.device)).norm(dim=-1)
        by_norm_x = err / x.pow(2).sum(-1)
    if _close(answer, batch_mean):
        return _report(False, "hint: the denominator uses the mean of the tokens you passed in; the per-sample FVU "
                              "divides by the distance to the TRAINING mean mu (method page, eq. for FVU(x)).")
    if _close(answer, no_square):
        return _report(False, "hint: you divided the norms; the FVU is a ratio of SQUARED norms.")
    if _close(answer, 1 / ref):
        return _report(False, "hint: numerator and denominator are swapped: the error ||x_tilde - x||^2 goes on top.")
    if _close(answer, by_norm_x):
        return _report(False, "hint: the denominator is ||x - mu||^2, the distance to the training mean, not ||x||^2.")
    if _close(answer, err.cpu()):
        return _report(False, "hint: that is the squared error alone; divide it by the token's variance term.")
    return _report(False, "hint: not the per-sample FVU: the squared reconstruction error of each token over its "
                          "squared distance to the training mean (method page, eq. for FVU(x)).")


# ---------------------------------------------------------------------------------------------- notebook 3
def held_out_halves(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The exercise's halves of range(n): a permutation with `seed`, A = the first n // 2 indices."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2:]


def check_held_out_gain(answer, setup, sae, gammas, lams, seed: int = 0) -> bool:
    """Notebook 3: `answer = (gamma, lambda, gain)`: the pair of the grid `gammas` x `lams` that is best on half A
    of the test split, and VS2's gain (points) over zero-shot with that pair on half B. Halves:
    `held_out_halves(len(test), seed)`. The grid must not contain the identity (gamma = 1 or lambda = 0), or "no
    steering" can win where VS2 loses and the answer is 0."""
    if any(float(g) == 1.0 for g in gammas) or any(float(l) == 0.0 for l in lams):
        return _report(False, "hint: the grid contains no steering at all (gamma = 1 or lambda = 0); use the "
                              "exercise's grid `ex_gammas` x `ex_lams`.")
    x, y = setup.test.cls.to(sae.device), setup.test.labels
    halves = held_out_halves(len(y), seed)
    grid_a, grid_b = (torch.tensor([[setup.accuracy(steer.vs2(x[h], sae, g, lam), y[h]) for lam in lams]
                                    for g in gammas]) for h in halves)
    zs_a, zs_b = (setup.accuracy(x[h], y[h]) for h in halves)
    return judge_held_out_gain(answer, grid_a, grid_b, zs_a, zs_b, gammas, lams, zs_all=setup.accuracy(x, y))


def check_majority_mask(answer, nbr_labels: torch.Tensor, query_labels: torch.Tensor | None = None) -> bool:
    """Notebook 5: the majority rule's positives, (Q, N) bool: neighbours that carry the most frequent label.
    `query_labels` (Q,) lets the check recognise the eq.-4 rule (the query's own label) as a mistake."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "a (Q, N) boolean mask")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    ref = retrieval.positive_mask(nbr_labels, rule="majority")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected a mask of shape {tuple(ref.shape)} (queries x neighbours), "
                              f"got {tuple(answer.shape)}.")
    if answer.dtype != torch.bool:
        if answer.is_floating_point() or not bool(((answer == 0) | (answer == 1)).all()):
            return _report(False, f"hint: the mask should be boolean (True for S+); got dtype {answer.dtype}. "
                                  "A comparison such as `a == b` gives one.")
    answer = answer.bool().cpu()
    ref = ref.cpu()
    if torch.equal(answer, ref):
        return _report(True, "")
    if bool(answer.all()):
        return _report(False, "hint: every neighbour is marked as a positive; S+ holds only the neighbours whose "
                              "label is the row's most frequent one.")
    if not bool(answer.any()):
        return _report(False, "hint: no neighbour is marked; every row has at least one positive under this rule.")
    if torch.equal(answer, ~ref):
        return _report(False, "hint: that is S- (the negatives); the positives are the neighbours WITH the majority "
                              "label.")
    nbr = nbr_labels.cpu()
    if torch.equal(answer, nbr == nbr[:, :1]):
        return _report(False, "hint: that compares with the nearest neighbour's label; the rule uses the label that "
                              "occurs most often in the row.")
    if query_labels is not None and torch.equal(answer, nbr == query_labels.cpu()[:, None]):
        return _report(False, "hint: that is eq. 4's rule (the query's own label); this exercise asks for §4.2's "
                              "rule, the row's most frequent label.")
    if torch.equal(answer, nbr == torch.mode(nbr, dim=0).values[None, :]):
        return _report(False, "hint: the mode was taken over the queries (dim=0); take it over each row's "
                              "neighbours.")
    rows_ok = (answer == ref).all(1)
    # a tie broken the other way: the row marks one label, and as many neighbours as the majority label has
    same_label = torch.tensor([bool(r.any()) and len(set(l[r].tolist())) == 1 for r, l in zip(answer, nbr)])
    if same_label.all() and torch.equal(answer.sum(1), ref.sum(1)):
        return _report(False, "hint: right idea; where two labels are equally frequent, take the smaller label id "
                              "(what torch.mode returns).")
    return _report(False, f"hint: {int((~rows_ok).sum())} of {len(ref)} rows differ from the majority rule. "
                          "Per row: which label occurs most often, and which neighbours carry it?")


# ---------------------------------------------------------------------------------------------- notebook 6
def check_pass_gradient(answer, vals: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, n_latents: int) -> bool:
    """Notebook 6: d L / d vals (B, k) of the PASS penalty of paper v3 eq. 7 (variant "eq7"), with mini-batch
    class means. The reference is autograd through `pass_loss.pass_loss`."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "the gradient with respect to vals, shape (B, k)")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    v = vals.detach().clone().requires_grad_(True)
    pass_loss.pass_loss(v, idx, labels, n_latents, variant="eq7").backward()
    ref = v.grad
    B = vals.shape[0]
    if answer.shape == (B, n_latents) and answer.shape != ref.shape:
        return _report(False, f"hint: that is the gradient for the dense codes (B, n); the encoder outputs only the "
                              f"k values, so gather it at idx: shape {tuple(ref.shape)}.")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected shape {tuple(ref.shape)} (one entry per selected value).")
    if (nan := _nan_hint(answer)) is not None:
        return _report(False, nan)
    if _close(answer, ref):
        return _report(True, "")
    # the slip of differentiating the class mean only inside sample i's own term: a factor 1 - 1 / n_{y_i}
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1)[labels].to(ref.dtype)
    own_term_only = ref * (1 - 1 / counts)[:, None]
    if _close(answer, own_term_only):
        return _report(False, "hint: you differentiated the class mean only inside sample i's own term (a factor "
                              "1 - 1/n_y). zbar_y also appears in the terms of the other samples of the class; "
                              "add those contributions: what do the deviations of a class sum to?")
    if _close(answer, B * ref):
        return _report(False, "hint: eq. 7 averages over the B samples: divide by B.")
    if _close(answer, ref / 2):
        return _report(False, "hint: the derivative of ||u||^2 is 2u.")
    if _close(answer, -ref):
        return _report(False, "hint: wrong sign: the gradient of ||z_i - zbar||^2 with respect to z_i is "
                              "2 (z_i - zbar), pointing away from the class mean.")
    if not bool(answer.any()):
        return _report(False, "hint: the gradient is not zero: only the terms through the class means cancel.")
    return _report(False, "hint: start from the dense codes z and the class means zbar of THIS batch, "
                          "differentiate (1/B) sum_i ||z_i - zbar_{y_i}||^2, and keep the entries at idx.")


# ---------------------------------------------------------------------------------------------- notebook 7
def check_changed_rows(answer: Iterable[str] | None, methods: Iterable[str]) -> bool:
    """Notebook 7: which rows of the table can change when only `positive_rule` and `gate_q` change?
    `methods` are the row names of the run (`r.method`); the names the page shows (`plots.display_name`) are
    accepted as well. The reference: rows that use the gate or the VS2++ positives."""
    from .plots import display_name
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    if isinstance(answer, str):
        return _report(False, f"hint: put the row names in a set, e.g. {{{answer!r}, ...}}; a plain string is one "
                              "name, and set(string) would split it into characters.")
    if isinstance(answer, dict) or not isinstance(answer, Iterable):
        return _report(False, f"hint: `answer` should be a set of row names; got {type(answer).__name__}.")
    answer = list(answer)
    if not all(isinstance(a, str) for a in answer):
        return _report(False, "hint: every element should be a row name (a string), as in result.rows.")
    methods = list(methods)
    key = {m.strip().lower(): m for m in methods}
    key.update({display_name(m).strip().lower(): m for m in methods})
    unknown = sorted(a for a in answer if a.strip().lower() not in key)
    if unknown:
        return _report(False, f"hint: {unknown} are not row names; use the names of result.rows "
                              "(or as the table shows them).")
    answer = {key[a.strip().lower()] for a in answer}
    ref = {m for m in methods if "gate" in m or "VS2++" in m}
    if answer == ref:
        return _report(True, "")
    extra, missing = answer - ref, ref - answer
    if extra:
        return _report(False, f"hint: {sorted(display_name(m) for m in extra)} use neither the gate nor the VS2++ "
                              "positives, and the SAEs are trained with the same seed, so they cannot change.")
    if any("gate" in m for m in missing):
        return _report(False, "hint: the gate's threshold tau is the q-quantile of the training FVU: a new q moves it "
                              "(every gate row).")
    return _report(False, "hint: the positive rule decides S+ for every VS2++ row; one is missing.")


# ---------------------------------------------------------------------------------------------- notebook 8
def check_best_alpha(answer, setup, sae, gammas, lams) -> bool:
    """Notebook 8: alpha = lambda (gamma - 1) of the best cell of VS2's test top-1 on the grid gammas x lams."""
    x = setup.test.cls.to(sae.device)
    grid = torch.tensor([[setup.accuracy(steer.vs2(x, sae, g, lam)) for lam in lams] for g in gammas])
    return judge_best_alpha(answer, grid, gammas, lams)


def centroid_shift_signal(x_train: torch.Tensor, x_test: torch.Tensor, x_ref_train: torch.Tensor) -> float:
    """||mu - mu_ref|| / mean ||x - mu||: mu the mean of a domain's unlabelled train tokens x_train (N, d), mu_ref
    that of the pretraining-resolution domain's x_ref_train (M, d), x the domain's test tokens x_test (Q, d)."""
    mu, mu_ref = x_train.double().mean(0), x_ref_train.double().mean(0)
    return ((mu - mu_ref).norm() / (x_test.double() - mu).norm(dim=-1).mean()).item()


def check_centroid_shift(answer, x_train: torch.Tensor, x_test: torch.Tensor, x_ref_train: torch.Tensor) -> bool:
    """Notebook "When does VS2 help?": the label-free shift signal of one domain, recomputed from the tensors the
    reader passes (never printed)."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_number(answer, "the shift signal, a ratio of norms")
    if isinstance(answer, str):
        return _report(False, "hint: " + answer)
    ref = centroid_shift_signal(x_train, x_test, x_ref_train)
    if abs(answer - ref) <= 1e-4 * max(1.0, abs(ref)):
        return _report(True, "")
    mu, mu_ref = x_train.double().mean(0), x_ref_train.double().mean(0)
    test_mu = x_test.double().mean(0)
    wrong = {
        "hint: mu is the mean of the domain's unlabelled TRAIN tokens, not of its test tokens.":
            ((test_mu - mu_ref).norm() / (x_test.double() - test_mu).norm(dim=-1).mean()).item(),
        "hint: divide by the mean of the per-token norms ||x - mu||, not by the norm of a mean.":
            ((mu - mu_ref).norm() / (x_test.double() - mu).mean(0).norm().clamp_min(1e-12)).item(),
        "hint: that is the ratio upside down: ||mu - mu_ref|| goes on top.": 1.0 / ref if ref else float("nan"),
        "hint: use norms, not squared norms.":
            ((mu - mu_ref).pow(2).sum() / (x_test.double() - mu).pow(2).sum(-1).mean()).item(),
    }
    for hint, value in wrong.items():
        if abs(answer - value) <= 1e-4 * max(1.0, abs(value)):
            return _report(False, hint)
    return _report(False, "hint: not yet. Which tokens give mu, which give mu_ref, and which tokens' distances to "
                          "mu go into the denominator? (the definition is in the text above the exercise)")
