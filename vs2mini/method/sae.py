"""Top-k sparse autoencoder (sparsify-style, as VS2 used it; paper v3 §3, eq. 1 and App. C).

    pre   = ReLU(W_enc (x - b_pre) + b_enc)          # (N, n)
    a,idx = topk(pre, k)                             # (N, k) values >= 0 and their latent indices
    x_hat = sum_j a_j W_dec[idx_j] + b_pre           # (N, d)

The paper is inconsistent here: its eq. 1 has no ReLU and no b_enc; Alg. 1 calls sparsify's `pre_acts`/`select_topk`, which
have both, so we implement the library form. W_dec rows are kept at unit norm by the trainer.
The encoder has a hand-written backward that touches only the k selected latents per row, and the decoder is an
`embedding_bag`: one dense GEMM per training step instead of the five of a dense implementation.
Saving and loading: vs2mini.method.sae_file.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SAE_FORMAT_VERSION = 2          # v2: SHA-256 over the tensors, package version; v1 files (no checksum) still load
SAE_FORMAT = f"vs2mini-topk-sae-v{SAE_FORMAT_VERSION}"     # the file format (method/sae_file.py) of config()


class _SparseEncoder(torch.autograd.Function):
    """(x_c, W_enc, b_enc, k) -> top-k of ReLU(x_c W_enc^T + b_enc); backward only through the selected latents."""

    @staticmethod
    def forward(ctx, x_c, W, b, k):
        pre = F.relu(F.linear(x_c, W, b))
        vals, idx = pre.topk(k, dim=-1, sorted=False)
        ctx.save_for_backward(x_c, W, vals, idx)
        return vals, idx

    @staticmethod
    def backward(ctx, grad_vals, _grad_idx):
        x_c, W, vals, idx = ctx.saved_tensors
        g = (grad_vals * (vals > 0)).to(W.dtype)                      # ReLU gradient
        # embedding_bag(idx, W, g) is sum_j g_ij W[idx_ij] = grad_x; its weight gradient against x_c is
        # grad_W[idx_ij] += g_ij x_c[i], computed without materialising a (N, k, d) tensor.
        with torch.enable_grad():
            W_ = W.detach().requires_grad_(ctx.needs_input_grad[1])
            grad_x = F.embedding_bag(idx, W_, per_sample_weights=g, mode="sum")
            grad_W = torch.autograd.grad(grad_x, W_, x_c.to(W.dtype))[0] if ctx.needs_input_grad[1] else None
        grad_b = None
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(W.shape[0], device=W.device, dtype=W.dtype).index_add_(0, idx.flatten(), g.flatten())
        return grad_x.detach().to(x_c.dtype) if ctx.needs_input_grad[0] else None, grad_W, grad_b, None


class TopKSAE(nn.Module):
    """Top-k SAE. Parameters: W_enc (n, d), b_enc (n,), W_dec (n, d) with unit-norm rows, b_pre (d,)."""

    def __init__(self, d_in: int, n_latents: int, k: int, *, seed: int | None = None):
        super().__init__()
        for name, v in (("d_in", d_in), ("n_latents", n_latents), ("k", k)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if k > n_latents:
            raise ValueError(f"k={k} is larger than the dictionary (n_latents={n_latents}); choose k <= n_latents")
        self.d_in, self.n_latents, self.k = d_in, n_latents, k
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init range (sparsify init)
        W = torch.empty(n_latents, d_in).uniform_(-bound, bound, generator=gen)
        self.W_enc = nn.Parameter(W)
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.W_dec = nn.Parameter(F.normalize(W.clone(), dim=-1))
        self.b_pre = nn.Parameter(torch.zeros(d_in))

    @property
    def device(self) -> torch.device:
        return self.b_pre.device

    # ---------------------------------------------------------------- encoder
    # Inputs are moved to the SAE's device, so CPU-cached features work with an SAE on the GPU.
    def check_input(self, x: torch.Tensor) -> None:
        """Clear errors for wrong shapes, dtypes and non-finite values."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.d_in:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected activations of shape (N, {self.d_in}), got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point activations, got {x.dtype}")
        if x.dtype != self.W_enc.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"expected {self.W_enc.dtype} activations (the SAE's dtype), got {x.dtype}: pass "
                             f"x.to({self.W_enc.dtype}) (or convert the SAE with .to(dtype))")
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or inf; clean the activations (e.g. recompute the cache)")

    def pre_acts(self, x: torch.Tensor, check: bool = True) -> torch.Tensor:
        """x: (N, d) -> ReLU(W_enc (x - b_pre) + b_enc): (N, n)."""
        if check:
            self.check_input(x)
        x = x.to(self.device)
        return F.relu(F.linear(x - self.b_pre, self.W_enc, self.b_enc))

    def select_topk(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pre: (N, n) -> (values (N, k) >= 0, indices (N, k)). Ties are broken by torch.topk (not stable)."""
        return pre.topk(self.k, dim=-1, sorted=False)

    def encode_sparse(self, x: torch.Tensor, check: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, d) -> (values, indices), each (N, k), differentiable with the sparse backward.
        `check=False` skips input validation (the trainer validates its data once; the NaN check syncs a GPU)."""
        if check:
            self.check_input(x)
        x = x.to(self.device)
        return _SparseEncoder.apply(x - self.b_pre, self.W_enc, self.b_enc, self.k)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, d) -> dense codes (N, n) with at most k non-negative non-zeros per row."""
        vals, idx = self.encode_sparse(x)
        return torch.zeros(x.shape[0], self.n_latents, device=vals.device, dtype=vals.dtype).scatter(1, idx, vals)

    # ---------------------------------------------------------------- decoder
    def decode(self, z: torch.Tensor, idx: torch.Tensor | None = None, bias: bool = True) -> torch.Tensor:
        """Dense codes z: (N, n), or sparse values z: (N, k) with idx: (N, k) -> (N, d). `bias=False` omits b_pre."""
        if idx is None:
            if z.ndim != 2 or z.shape[1] != self.n_latents:
                raise ValueError(f"expected dense codes (N, {self.n_latents}), got {tuple(z.shape)}")
            out = z.to(self.W_dec.dtype) @ self.W_dec
        else:
            if z.shape != idx.shape or z.ndim != 2:
                raise ValueError(f"values {tuple(z.shape)} and indices {tuple(idx.shape)} must both be (N, k)")
            out = F.embedding_bag(idx, self.W_dec, per_sample_weights=z.to(self.W_dec.dtype), mode="sum")
        return out + self.b_pre if bias else out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, d) -> (x_hat (N, d), dense codes z (N, n))."""
        z = self.encode(x)
        return self.decode(z), z

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, d) -> x_hat (N, d) via the sparse path."""
        vals, idx = self.encode_sparse(x)
        return self.decode(vals, idx)

    @torch.no_grad()
    def fvu(self, x: torch.Tensor, chunk: int = 16384) -> float:
        """Fraction of variance unexplained over x: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (v3 eq. 6)."""
        self.check_input(x)
        x = x.to(self.device)
        mean = x.double().mean(0)
        sse = sst = 0.0
        for c in x.split(chunk):
            sse += (self.reconstruct(c).double() - c.double()).pow(2).sum().item()
            sst += (c.double() - mean).pow(2).sum().item()
        if sst == 0:
            raise ValueError("FVU is undefined for constant data (zero variance)")
        return sse / sst

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Set every W_dec row to unit norm."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))

    # ---------------------------------------------------------------- io
    def config(self) -> dict:
        return {"format": SAE_FORMAT, "d_in": self.d_in, "n_latents": self.n_latents, "k": self.k}
