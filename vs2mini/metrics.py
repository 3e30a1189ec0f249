"""Accuracy metrics: top-1, per-class accuracy, per-class gains and the most confused class pairs."""
from __future__ import annotations

import torch


def _preds(logits_or_preds: torch.Tensor) -> torch.Tensor:
    return logits_or_preds.argmax(-1) if logits_or_preds.ndim == 2 else logits_or_preds


def top1(logits_or_preds: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent. logits (N, C) or predictions (N,); labels (N,)."""
    p = _preds(logits_or_preds).cpu()
    if p.shape != labels.shape:
        raise ValueError(f"predictions {tuple(p.shape)} and labels {tuple(labels.shape)} differ in shape")
    if len(labels) == 0:
        raise ValueError("no samples")
    return 100.0 * (p == labels.cpu()).float().mean().item()


def per_class_accuracy(logits_or_preds: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class top-1 in percent, (C,); NaN for classes without samples."""
    p, y = _preds(logits_or_preds).cpu(), labels.cpu()
    correct = torch.bincount(y[p == y], minlength=n_classes).double()
    total = torch.bincount(y, minlength=n_classes).double()
    return torch.where(total > 0, 100.0 * correct / total.clamp_min(1), torch.nan)


def class_gains(acc_before: torch.Tensor, acc_after: torch.Tensor, classnames: list[str], top: int = 5):
    """Largest per-class gains and losses: ([(name, before, after, delta)], [...])."""
    delta = acc_after - acc_before
    order = torch.argsort(torch.nan_to_num(delta, nan=0.0), descending=True).tolist()
    row = lambda i: (classnames[i], acc_before[i].item(), acc_after[i].item(), delta[i].item())  # noqa: E731
    return [row(i) for i in order[:top]], [row(i) for i in order[::-1][:top]]


def confusion_matrix(logits_or_preds: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, C) counts, rows = true class, columns = predicted class."""
    p, y = _preds(logits_or_preds).cpu(), labels.cpu()
    return torch.bincount(y * n_classes + p, minlength=n_classes * n_classes).view(n_classes, n_classes)


def most_confused(logits_or_preds: torch.Tensor, labels: torch.Tensor, classnames: list[str], top: int = 10):
    """The `top` (true, predicted, count) pairs with the most errors."""
    cm = confusion_matrix(logits_or_preds, labels, len(classnames)).clone()
    cm.fill_diagonal_(0)
    vals, flat = cm.flatten().topk(min(top, cm.numel()))
    C = len(classnames)
    return [(classnames[i // C], classnames[i % C], int(v)) for v, i in zip(vals.tolist(), flat.tolist()) if v > 0]


def errors_within_groups(logits_or_preds: torch.Tensor, labels: torch.Tensor, group_of: torch.Tensor) -> float | None:
    """Percent of the errors whose predicted class lies in the true class's group (e.g. its super-class).
    group_of: (C,) group index per class. None when there are no errors."""
    p, y = _preds(logits_or_preds).cpu(), labels.cpu()
    g = torch.as_tensor(group_of).cpu()
    wrong = p != y
    if not wrong.any():
        return None
    return 100.0 * (g[p[wrong]] == g[y[wrong]]).float().mean().item()


def paired_se(right: torch.Tensor, base_right: torch.Tensor) -> float:
    """Paired standard error (points) of a top-1 difference: right, base_right: (N,) bool per-image correctness of a
    row and of its reference (zero-shot) on the same images; se = std(d, ddof=1) / sqrt(N), d = right - base_right."""
    if right.shape != base_right.shape or right.ndim != 1:
        raise ValueError(f"right and base_right must be (N,) of the same shape, got {tuple(right.shape)} and "
                         f"{tuple(base_right.shape)}")
    if len(right) < 2:
        raise ValueError("a paired standard error needs at least 2 images")
    d = right.cpu().double() - base_right.cpu().double()
    return 100.0 * (d.std(unbiased=True) / len(d) ** 0.5).item()
