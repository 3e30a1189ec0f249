"""Check functions for the notebooks' exercises: compare the reader's answer with the reference and print a hint.

Every check returns True when the answer is right and prints one line: "correct", "not attempted yet" (the answer is
still None) or a hint aimed at the most likely mistake. The reference always comes from the package's own functions,
so the exercises and the rest of vs2mini cannot drift apart.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from . import prototype, retrieval, steer

NOT_ATTEMPTED = "not attempted yet: replace `answer = None` with your code and run the cell again."


def _report(ok: bool, hint: str) -> bool:
    print("correct." if ok else hint)
    return ok


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.double().cpu(), b.double().cpu(), rtol=rtol, atol=atol)


def _as_tensor(answer, name: str) -> torch.Tensor | str:
    """The answer as a tensor, or the hint to print when it is not one."""
    if isinstance(answer, torch.Tensor):
        return answer.detach()
    return f"`answer` should be a torch.Tensor ({name}); got {type(answer).__name__}."


def check_ensemble_accuracy(answer, setup) -> bool:
    """Notebook 1: top-1 (%) on the test split of the 18-template head ("cifar18"), from the cached CLS tokens."""
    from .clip import zeroshot_head
    from .features import cls_to_logits
    from .metrics import top1
    head18 = zeroshot_head(setup.clip, setup.classnames, "cifar18")
    reference = top1(cls_to_logits(setup.clip, setup.test.cls, head18).cpu(), setup.test.labels)
    return judge_ensemble_accuracy(answer, setup.accuracy(setup.test.cls), reference)


def judge_ensemble_accuracy(answer, acc_single: float, acc_reference: float) -> bool:
    """The verdict of `check_ensemble_accuracy`: `acc_single` is the 1-template top-1 (%), `acc_reference` the
    18-template top-1 (%)."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = float(answer)
    if abs(answer - acc_reference) < 1e-3:
        return _report(True, "")
    if abs(100 * answer - acc_reference) < 1e-1:
        return _report(False, "hint: that looks like a fraction; report top-1 in percent, as metrics.top1 does.")
    if abs(answer - acc_single) < 1e-3 and abs(acc_single - acc_reference) > 1e-3:
        return _report(False, "hint: that is the single-template accuracy: build the head with "
                              "zeroshot_head(setup.clip, setup.classnames, \"cifar18\") and use it for the logits.")
    return _report(False, f"hint: expected {acc_reference:.2f}%; compute logits from the CLS tokens with "
                          "cls_to_logits(setup.clip, setup.test.cls, head18) and compare their argmax with the labels.")


def check_per_sample_fvu(answer, x: torch.Tensor, sae, mu: torch.Tensor) -> bool:
    """Notebook 2: FVU(x) = ||x_tilde - x||^2 / ||x - mu||^2 per token. x: (N, d), mu: (d,) training mean."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "one FVU per token, shape (N,)")
    if isinstance(answer, str):
        return _report(False, answer)
    ref = steer.per_sample_fvu(x, sae, mu)
    if answer.ndim == 0:
        return _report(False, f"hint: one value per token, shape ({len(x)},); you returned one number "
                              "(did you sum over tokens as well as over dimensions?).")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected shape {tuple(ref.shape)}, got {tuple(answer.shape)}; "
                              "sum the squares over the feature dimension only (dim=-1).")
    if _close(answer, ref):
        return _report(True, "")
    with torch.no_grad():
        x = x.to(sae.device)
        err = (sae.reconstruct(x) - x).pow(2).sum(-1)
        batch_mean = err / (x - x.mean(0)).pow(2).sum(-1)
        no_square = (sae.reconstruct(x) - x).norm(dim=-1) / (x - mu.to(x.device)).norm(dim=-1)
    if _close(answer, batch_mean):
        return _report(False, "hint: the denominator uses the mean of the tokens you passed in; the per-sample FVU "
                              "divides by the distance to the TRAINING mean mu (method page, eq. for FVU(x)).")
    if _close(answer, no_square):
        return _report(False, "hint: you divided the norms; the FVU is a ratio of SQUARED norms.")
    if _close(answer, 1 / ref):
        return _report(False, "hint: numerator and denominator are swapped: the error ||x_tilde - x||^2 goes on top.")
    return _report(False, "hint: compute x_tilde = sae.reconstruct(x), then "
                          "(x_tilde - x).pow(2).sum(-1) / (x - mu).pow(2).sum(-1).")


def check_held_out_gain(answer, setup, sae, gammas, lams, seed: int = 0) -> bool:
    """Notebook 3: VS2's gain (points) over zero-shot on half B of the test split, with the (gamma, lambda) of the
    grid `gammas` x `lams` that is best on half A. Halves: a permutation of the test split with `seed`, A first."""
    x, y = setup.test.cls.to(sae.device), setup.test.labels
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    halves = perm[: len(y) // 2], perm[len(y) // 2:]
    grid_a, grid_b = (torch.tensor([[setup.accuracy(steer.vs2(x[h], sae, g, lam), y[h]) for lam in lams]
                                    for g in gammas]) for h in halves)
    zs_a, zs_b = (setup.accuracy(x[h], y[h]) for h in halves)
    return judge_held_out_gain(answer, grid_a, grid_b, zs_a, zs_b)


def judge_held_out_gain(answer, grid_a: torch.Tensor, grid_b: torch.Tensor, zs_a: float, zs_b: float) -> bool:
    """The verdict of `check_held_out_gain`. grid_a, grid_b: (G, L) top-1 (%) on halves A and B; zs_*: zero-shot."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = float(answer)
    i = int(grid_a.argmax())
    reference = grid_b.flatten()[i].item() - zs_b
    if abs(answer - reference) < 1e-3:
        return _report(True, "")
    if abs(answer - (grid_b.max().item() - zs_b)) < 1e-3:
        return _report(False, "hint: that is the best gain on half B itself, i.e. tuned on the evaluation data; "
                              "choose (gamma, lambda) on half A and only then evaluate that one pair on B.")
    if abs(answer - (grid_a.max().item() - zs_a)) < 1e-3:
        return _report(False, "hint: that is the gain on half A, where you tuned; report the same pair's gain on B.")
    if abs(answer - grid_b.flatten()[i].item()) < 1e-3:
        return _report(False, "hint: that is B's top-1; the answer is the gain, top-1 minus zero-shot on half B.")
    return _report(False, "hint: grid on A -> argmax -> that (gamma, lambda) on B -> minus B's zero-shot top-1.")


def check_majority_mask(answer, nbr_labels: torch.Tensor) -> bool:
    """Notebook 5: the majority rule's positives, (Q, N) bool: neighbours that carry the most frequent label."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "a (Q, N) boolean mask")
    if isinstance(answer, str):
        return _report(False, answer)
    ref = retrieval.positive_mask(nbr_labels, rule="majority")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected a mask of shape {tuple(ref.shape)} (queries x neighbours), "
                              f"got {tuple(answer.shape)}.")
    answer = answer.bool().cpu()
    ref = ref.cpu()
    if torch.equal(answer, ref):
        return _report(True, "")
    if torch.equal(answer, ~ref):
        return _report(False, "hint: that is S- (the negatives); the positives are the neighbours WITH the majority "
                              "label.")
    nbr = nbr_labels.cpu()
    if torch.equal(answer, nbr == nbr[:, :1]):
        return _report(False, "hint: that compares with the nearest neighbour's label; compare with the most frequent "
                              "label of the row (torch.mode(..., dim=1)).")
    rows_ok = (answer == ref).all(1)
    # a tie broken the other way: the row marks one label, and as many neighbours as the majority label has
    same_label = torch.tensor([bool(r.any()) and len(set(l[r].tolist())) == 1 for r, l in zip(answer, nbr)])
    if same_label.all() and torch.equal(answer.sum(1), ref.sum(1)):
        return _report(False, "hint: right idea; where two labels are equally frequent, take the smaller label id "
                              "(what torch.mode returns).")
    return _report(False, f"hint: {int((~rows_ok).sum())} of {len(ref)} rows differ; mode = torch.mode(nbr, dim=1)"
                          ".values, then nbr == mode[:, None].")


def check_pass_gradient(answer, vals: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, n_latents: int) -> bool:
    """Notebook 6: d L / d vals (B, k) of the PASS penalty of paper v3 eq. 7 (variant "eq7"), with mini-batch
    class means. The reference is autograd through `prototype.pass_loss`."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    answer = _as_tensor(answer, "the gradient with respect to vals, shape (B, k)")
    if isinstance(answer, str):
        return _report(False, answer)
    v = vals.detach().clone().requires_grad_(True)
    prototype.pass_loss(v, idx, labels, n_latents, variant="eq7").backward()
    ref = v.grad
    B = vals.shape[0]
    if answer.shape == (B, n_latents) and answer.shape != ref.shape:
        return _report(False, f"hint: that is the gradient for the dense codes (B, n); the encoder outputs only the "
                              f"k values, so gather it at idx: shape {tuple(ref.shape)}.")
    if answer.shape != ref.shape:
        return _report(False, f"hint: expected shape {tuple(ref.shape)} (one entry per selected value).")
    if _close(answer, ref):
        return _report(True, "")
    if _close(answer, B * ref):
        return _report(False, "hint: eq. 7 averages over the B samples: divide by B.")
    if _close(answer, ref / 2):
        return _report(False, "hint: the derivative of ||u||^2 is 2u.")
    if _close(answer, -ref):
        return _report(False, "hint: wrong sign: the gradient of ||z_i - zbar||^2 with respect to z_i is "
                              "2 (z_i - zbar), pointing away from the class mean.")
    return _report(False, "hint: dense codes z, class means zbar_y, then (2 / B) (z_i - zbar_{y_i}) gathered at idx; "
                          "the terms through the class means add up to zero.")


def check_changed_rows(answer: Iterable[str] | None, methods: Iterable[str]) -> bool:
    """Notebook 7: which rows of the table can change when only `positive_rule` and `gate_q` change?
    `methods` are the row names of the run. The reference: rows that use the gate or the VS2++ positives."""
    if answer is None:
        return _report(False, NOT_ATTEMPTED)
    methods = list(methods)
    ref = {m for m in methods if "gate" in m or "VS2++" in m}
    answer = set(answer)
    unknown = answer - set(methods)
    if unknown:
        return _report(False, f"hint: {sorted(unknown)} are not row names; use the names of result.rows.")
    if answer == ref:
        return _report(True, "")
    extra, missing = answer - ref, ref - answer
    if extra & {"VS2", "VS2 + PASS", "CLIP zero-shot"} or any("REC" in m for m in extra):
        return _report(False, f"hint: {sorted(extra)} use neither the gate nor the VS2++ positives, and the SAEs "
                              "are trained with the same seed, so they cannot change.")
    if any("gate" in m for m in missing):
        return _report(False, "hint: the gate's threshold tau is the q-quantile of the training FVU: a new q moves it.")
    return _report(False, f"hint: the positive rule decides S+ for every VS2++ row; you are missing {sorted(missing)}.")
