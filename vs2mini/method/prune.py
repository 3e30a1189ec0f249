"""The paper's dead-feature pruning (v3 App. C: "dead feature threshold 100", "any feature seldom activated is
pruned") as an option: count how often each latent fires on the training vectors and drop the rare ones.
Off by default; method/train.py's docstring says why."""
from __future__ import annotations

import torch

from .sae import TopKSAE


@torch.no_grad()
def firing_counts(sae: TopKSAE, X: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """(n,) on how many rows of X: (N, d) each latent fires (selected by top-k with a positive value)."""
    counts = torch.zeros(sae.n_latents, dtype=torch.long, device=sae.device)
    for c in X.split(chunk):
        vals, idx = sae.encode_sparse(c.to(sae.device), check=False)
        counts.index_add_(0, idx.flatten(), (vals > 0).flatten().long())
    return counts


@torch.no_grad()
def prune_rare_latents(sae: TopKSAE, X: torch.Tensor, min_count: int) -> tuple[TopKSAE, torch.Tensor]:
    """The paper's dead-feature pruning: a copy of `sae` without the latents that fire on fewer than `min_count`
    rows of X: (N, d) (always keeping at least k latents, the most frequent). Returns (SAE, kept indices).
    A latent that never fires on X is never selected with a positive value, so removing only such latents
    (min_count = 1) leaves every reconstruction of X unchanged."""
    counts = firing_counts(sae, X)
    keep = (counts >= min_count).nonzero().flatten()
    if len(keep) < sae.k:
        keep = counts.argsort(descending=True, stable=True)[:sae.k].sort().values
    out = TopKSAE(sae.d_in, len(keep), sae.k).to(sae.device)
    for name in ("W_enc", "b_enc", "W_dec"):
        getattr(out, name).copy_(getattr(sae, name)[keep])
    out.b_pre.copy_(sae.b_pre)
    return out.eval().requires_grad_(False), keep
