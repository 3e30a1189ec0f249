"""Test oracles: VS2++ read literally from the paper (v3 §3.3, eq. 5), written independently of the package's one
form (`vs2mini.method.steer.vs2pp_from_bank`, a sparse product over the bank) to check it on hand-made cases.

One query at a time, exactly as the equation reads:
    cbar+- = mean of the neighbours' codes over S+- ,   vbar = (gamma - 1) W_dec^T (cbar+ - cbar-),
    x_hat = (x + lam vbar) ||x|| / ||x + lam vbar||,
with the package's documented defaults for empty sets (method page): S- empty -> cbar- = 0; S+ empty -> unsteered.
Slow on purpose (a Python loop over queries); tests only.
"""
from __future__ import annotations

import torch


def masked_mean(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """v: (N, M, m), mask: (N, M) bool -> mean over the masked neighbours (N, m); zeros where none."""
    w = mask.to(v.dtype).unsqueeze(-1)
    return (v * w).sum(1) / w.sum(1).clamp_min(1.0)


@torch.no_grad()
def vs2pp_eq5(x: torch.Tensor, neighbour_codes: torch.Tensor, pos_mask: torch.Tensor, gamma: float, lam: float,
              W_dec: torch.Tensor | None = None, rescale: bool = True) -> torch.Tensor:
    """x: (Q, d); neighbour_codes: (Q, M, n) each query's neighbours' SAE codes; pos_mask: (Q, M) bool, True for
    S+; W_dec: (n, d) the decoder rows (None: the "codes" are already decoded directions W_dec^T c_j, n = d).
    -> (Q, d)."""
    out = []
    for xq, codes, pos in zip(x, neighbour_codes, pos_mask.bool()):
        if not pos.any():                                      # S+ empty: no steering
            out.append(xq.clone())
            continue
        c_pos = codes[pos].mean(0)
        c_neg = codes[~pos].mean(0) if (~pos).any() else torch.zeros_like(c_pos)
        diff = c_pos - c_neg
        v_bar = (gamma - 1.0) * (diff if W_dec is None else diff @ W_dec)
        y = xq + lam * v_bar
        out.append(y * xq.norm() / y.norm() if rescale else y)
    return torch.stack(out)


@torch.no_grad()
def vs2pp_gathered(x: torch.Tensor, neighbour_dirs: torch.Tensor, pos_mask: torch.Tensor, gamma: float,
                   lam: float, rescale: bool = True) -> torch.Tensor:
    """The same vectorised over gathered directions (Q, M, d) with two masked means (vs2mini's former
    `vs2pp_from_directions`): a second, independent reading to check `vs2pp_eq5` against."""
    pos = pos_mask.bool()
    v = (gamma - 1.0) * (masked_mean(neighbour_dirs, pos) - masked_mean(neighbour_dirs, ~pos))
    v = v * pos.any(1, keepdim=True)
    y = x + lam * v
    return y * (x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)) if rescale else y
