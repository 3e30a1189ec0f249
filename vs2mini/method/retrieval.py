"""Neighbour retrieval for VS2++ (paper v3 §3.3, eqs. 4-5): cosine k-NN over a training bank and S+/S- masks.

Retrieval features are CLIP image embeddings by default; the paper used DINOv2 (its size is not stated), which
`vs2mini.clip.features.dinov2_features` loads through torch.hub where it is reachable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POSITIVE_RULES = ("query", "majority")


SIM_BLOCK_BYTES = 256 * 2**20     # default size of the one (chunk, B) similarity block alive at a time


@torch.no_grad()
def knn(queries: torch.Tensor, bank: torch.Tensor, k: int = 50, chunk: int | None = None,
        exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine k-NN. queries: (Q, D), bank: (B, D) -> (similarities (Q, k), indices (Q, k)), best first.
    `exclude_self` drops index i for query i (queries are the bank). Queries go `chunk` rows at a time (default:
    as many as fit a 256 MB fp32 similarity block); only one (chunk, B) block is alive at any moment, so the peak
    is the normalised bank plus one block (10k x 50k: 1.7 GB with two blocks alive, about 0.4 GB now)."""
    if queries.ndim != 2 or bank.ndim != 2 or queries.shape[1] != bank.shape[1]:
        raise ValueError(f"queries (Q, D) and bank (B, D) must share D; got {tuple(queries.shape)}, {tuple(bank.shape)}")
    if not 1 <= k <= bank.shape[0] - int(exclude_self):
        raise ValueError(f"k={k} neighbours requested from a bank of {bank.shape[0]}")
    for name, t in (("queries", queries), ("bank", bank)):
        bad = (~torch.isfinite(t).all(dim=1)).nonzero()
        if len(bad):
            raise ValueError(f"{name} row {int(bad[0])} contains NaN or inf ({len(bad)} bad rows); "
                             "recompute those features")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of query rows, got {chunk}")
    chunk = chunk or max(1, SIM_BLOCK_BYTES // (4 * bank.shape[0]))
    bank = F.normalize(bank.float(), dim=-1)
    Q = queries.shape[0]
    sims = torch.empty(Q, k, device=bank.device)
    idx = torch.empty(Q, k, dtype=torch.long, device=bank.device)
    for start in range(0, Q, chunk):
        q = F.normalize(queries[start:start + chunk].float().to(bank.device), dim=-1)
        s = q @ bank.T
        if exclude_self:
            rows = torch.arange(q.shape[0], device=s.device)
            s[rows, rows + start] = -torch.inf
        torch.topk(s, k, dim=-1, out=(sims[start:start + chunk], idx[start:start + chunk]))
        del s, q                  # free this block before the next one is allocated
    return sims, idx


def positive_mask(neighbour_labels: torch.Tensor, query_labels: torch.Tensor | None = None,
                  rule: str = "query") -> torch.Tensor:
    """neighbour_labels: (Q, M) -> S+ mask (Q, M).

    rule "query" (paper v3 §3.3, eq. 4): neighbours whose label equals the query's label (`query_labels: (Q,)`).
    rule "majority" (paper v3 §4.2 text): neighbours with the most frequent label among the M (ties: the
    smallest label id). For VS2++ (pseudo) the labels are CLIP zero-shot predictions; for the oracle they are
    ground truth (the paper does not say which reading its oracle used; both are selectable).
    """
    if rule == "query":
        if query_labels is None:
            raise ValueError("rule 'query' needs query_labels")
        return neighbour_labels == query_labels[:, None]
    if rule == "majority":
        return neighbour_labels == torch.mode(neighbour_labels, dim=1).values[:, None]
    raise ValueError(f"unknown positive rule {rule!r}; choose one of {POSITIVE_RULES}")
