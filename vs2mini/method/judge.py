"""The held-out judge of SAE training: the fixed held-out split of the train vectors, the objective each epoch is
judged by (FVU; for PASS its own objective, method/train.py's docstring says why) and the run's summary."""
from __future__ import annotations

import torch

from .pass_loss import pass_loss
from .sae import TopKSAE


def holdout_size(n: int, holdout: float) -> int:
    """How many of n train vectors the held-out slice takes: round(holdout * n), at least 2 when holdout > 0."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be a fraction in [0, 1), got {holdout}")
    if holdout == 0.0:
        return 0
    m = max(2, round(holdout * n))
    if n - m < 2:
        raise ValueError(f"holdout={holdout} leaves {n - m} of {n} vectors to train on; use a smaller holdout")
    return m


def split_holdout(n: int, n_heldout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random split of range(n): (fit indices, held-out indices), both sorted."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))   # not the batch-order stream
    return perm[n_heldout:].sort().values, perm[:n_heldout].sort().values


def selection_key(hist: dict[str, list[float]]) -> str | None:
    """The history entry the checkpoint is selected by: `heldout_objective` for a PASS run (FVU + w_aux * PASS
    term on the held-out slice), `heldout_fvu` for a plain one, None without a held-out slice (the last epoch)."""
    return next((key for key in ("heldout_objective", "heldout_fvu") if hist.get(key)), None)


def summary(hist: dict[str, list[float]]) -> dict:
    """What a run achieved: steps, epochs and the selected epoch (lowest held-out objective, `selection_key`, else
    the last) with its train and held-out FVU (and held-out objective for PASS). JSON-able."""
    if not hist["fvu"]:
        return {"steps": 0, "epochs": 0, "selected_epoch": None, "train_fvu": None, "heldout_fvu": None}
    key = selection_key(hist)
    best = min(range(len(hist[key])), key=hist[key].__getitem__) if key else len(hist["fvu"]) - 1
    held = hist.get("heldout_fvu")
    out = {"steps": int(hist["step"][-1]), "epochs": len(hist["fvu"]), "selected_epoch": best + 1,
           "selected_step": int(hist["step"][best]), "train_fvu": hist["fvu"][best],
           "heldout_fvu": held[best] if held else None, "selected_by": key}
    if hist.get("heldout_objective"):
        out["heldout_objective"] = hist["heldout_objective"][best]
    return out


@torch.no_grad()
def heldout_objective(sae: TopKSAE, X: torch.Tensor, y: torch.Tensor | None, w_aux: float,
                      pass_variant: str) -> tuple[float, float]:
    """(FVU, FVU + w_aux * PASS term) of the SAE on a held-out slice X: (M, d) with labels y: (M,); the PASS term
    takes its class means over the whole slice. Without labels or w_aux the objective is the FVU."""
    fvu = sae.fvu(X)
    if y is None or w_aux <= 0:
        return fvu, fvu
    vals, idx = sae.encode_sparse(X, check=False)
    return fvu, fvu + w_aux * pass_loss(vals.float(), idx, y, sae.n_latents, variant=pass_variant).item()
