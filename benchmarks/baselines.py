"""The baselines the benchmarks time vs2mini against, in one place: what a user writes first (dense top-k SAE, dense
VS2 / VS2++ codes, a PIL + DataLoader feature pipeline), the previous vs2mini bodies (two-block k-NN, gathered VS2++
directions) and EleutherAI sparsify's own kernels (optional: `pip install --no-deps -r benchmarks/requirements.txt`).
None of this is package code; each benchmark checks its outputs against vs2mini's before timing them."""
from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from vs2mini.method import steer
from vs2mini.method.sae import TopKSAE
from vs2mini.method.train import batch_fvu, remove_parallel_grad


class DenseTopKSAE(nn.Module):
    """The naive dense top-k SAE, started from a TopKSAE's weights."""

    def __init__(self, sae: TopKSAE):
        super().__init__()
        self.k = sae.k
        for name in ("W_enc", "b_enc", "W_dec", "b_pre"):
            setattr(self, name, nn.Parameter(getattr(sae, name).detach().clone()))

    def forward(self, x):
        pre = F.relu(F.linear(x - self.b_pre, self.W_enc, self.b_enc))
        vals, idx = pre.topk(self.k, dim=-1, sorted=False)
        z = torch.zeros_like(pre).scatter(1, idx, vals)
        return z @ self.W_dec + self.b_pre


def dense_steps(m, opt, sched, X, batches, amp):
    losses = []
    for b in batches:
        x = X[b]
        with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=amp):
            x_hat = m(x)
        loss = batch_fvu(x, x_hat)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        remove_parallel_grad(m)
        opt.step()
        sched.step()
        with torch.no_grad():
            m.W_dec.div_(m.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        losses.append(loss.detach())
    return losses


def load_sparsify(dev):
    """(version, fused_encoder, decode(idx, acts, W_dec)) from the installed eai-sparsify, or None if absent."""
    spec = importlib.util.find_spec("sparsify")           # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    root = spec.submodule_search_locations[0]

    def load(name):
        sp = importlib.util.spec_from_file_location(f"_sparsify_{name}", f"{root}/{name}.py")
        mod = importlib.util.module_from_spec(sp)
        sp.loader.exec_module(mod)
        return mod
    encoder = load("fused_encoder").fused_encoder
    if dev.type == "cuda":                                 # sparsify's default on CUDA: its Triton embedding_bag
        xf = load("xformers").xformers_embedding_bag
        decode = lambda idx, acts, W_dec: xf(idx, W_dec, acts)  # noqa: E731
    else:                                                  # sparsify's eager fallback
        decode = lambda idx, acts, W_dec: F.embedding_bag(idx, W_dec, per_sample_weights=acts, mode="sum")  # noqa: E731
    return importlib.metadata.version("eai-sparsify"), encoder, decode


class SparsifySAE(nn.Module):
    """sparsify's SparseCoder (topk, no skip, autoencoding) from a TopKSAE's weights, with its kernels."""

    def __init__(self, sae: TopKSAE, kernels):
        super().__init__()
        self.k, (_, self.encoder, self.decoder) = sae.k, kernels
        self.W_enc = nn.Parameter(sae.W_enc.detach().clone())
        self.b_enc = nn.Parameter(sae.b_enc.detach().clone())
        self.W_dec = nn.Parameter(sae.W_dec.detach().clone())
        self.b_pre = nn.Parameter(sae.b_pre.detach().clone())      # sparsify's b_dec

    def forward(self, x):
        acts, idx, _pre = self.encoder(x - self.b_pre, self.W_enc, self.b_enc, self.k, "topk")
        return self.decoder(idx, acts.to(self.W_dec.dtype), self.W_dec) + self.b_pre


@torch.no_grad()
def knn_two_blocks(queries, bank, k=50, chunk=4096):
    """The previous `retrieval.knn` body (kept as the baseline): `s` of the last block is still referenced while
    the next block is allocated, so two (chunk, B) blocks are alive at once."""
    bank = F.normalize(bank.float(), dim=-1)
    sims, idx = [], []
    for start in range(0, queries.shape[0], chunk):
        q = F.normalize(queries[start:start + chunk].float().to(bank.device), dim=-1)
        s = q @ bank.T
        v, i = s.topk(k, dim=-1)
        sims.append(v)
        idx.append(i)
    return torch.cat(sims), torch.cat(idx)


def gathered_step(x, dirs, pos_mask, gamma, lam):
    """The former `steer.vs2pp_from_directions`: dirs (Q, M, d) gathered per query, two masked means."""
    w = pos_mask.to(dirs.dtype).unsqueeze(-1)
    mean_pos = (dirs * w).sum(1) / w.sum(1).clamp_min(1.0)
    mean_neg = (dirs * (1 - w)).sum(1) / (1 - w).sum(1).clamp_min(1.0)
    v = (gamma - 1.0) * (mean_pos - mean_neg) * pos_mask.any(1, keepdim=True)   # S+ empty: no steering
    return steer.apply_steering(x, v, lam)


@torch.no_grad()
def vs2pp_gathered(x, bank_dirs, nn_idx, pos_mask, gamma=steer.GAMMA, lam=steer.LAM, chunk=1024):
    """The previous VS2++ evaluation body: gather (chunk, M, d) neighbour directions, masked means."""
    dev = bank_dirs.device
    return torch.cat([gathered_step(x[s:s + chunk], bank_dirs[nn_idx[s:s + chunk].to(dev)],
                                    pos_mask[s:s + chunk].to(dev), gamma, lam)
                      for s in range(0, len(x), chunk)])


def dense_vs2(x, sae, gamma=steer.GAMMA, lam=steer.LAM):
    """Naive VS2 through dense codes."""
    pre = sae.pre_acts(x)
    vals, idx = pre.topk(sae.k, dim=-1)
    z = torch.zeros_like(pre).scatter(1, idx, vals)
    return steer.apply_steering(x, (gamma - 1.0) * (z @ sae.W_dec), lam)


@torch.no_grad()
def vs2pp_dense_codes(train_cls, test_cls, sae, pos_mask, nn_idx, gamma=steer.GAMMA, lam=steer.LAM, chunk=256):
    """Naive VS2++: dense bank codes (B, n), gathered per query chunk (Q, M, n), decoded, then the masked means."""
    dev = test_cls.device
    bank = torch.cat([sae.encode(c) for c in train_cls.split(8192)])
    out = []
    for s in range(0, len(test_cls), chunk):
        codes = bank[nn_idx[s:s + chunk].to(dev)]                                # (chunk, M, n)
        dirs = codes @ sae.W_dec                                                 # W_dec^T c_j, no b_pre
        out.append(gathered_step(test_cls[s:s + chunk], dirs, pos_mask[s:s + chunk].to(dev), gamma, lam))
    return torch.cat(out)


class PILImages(torch.utils.data.Dataset):
    """Like torchvision's CIFAR100: a (N, H, W, 3) uint8 array, PIL image + transform per item."""

    def __init__(self, data: np.ndarray, labels: np.ndarray, transform):
        self.data, self.labels, self.transform = data, labels, transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.data[i])), int(self.labels[i])


def usual_extract(model, ds: PILImages, device, batch: int, workers: int, amp: bool) -> torch.Tensor:
    """What a typical open_clip user writes."""
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers)
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for x, _ in loader:
            out.append(model.encode_image(x.to(device)).float().cpu())
    return torch.cat(out)
