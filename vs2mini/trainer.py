"""Training a TopKSAE on cached activations (SPEC 3.2-3.3, SAE_ANCHORS 7).

Defaults follow the paper where it speaks (lr 5e-4, linear warm-up then linear decay, FVU loss, b_pre at the data
mean) and sparsify where it does not. [NOT FOUND] in the paper, our documented choices:
- Adam(0.9, 0.999), batch 4096, 30 epochs (MSAE's CLIP recipe), warm-up = 5% of steps (1000 steps would be 80
  CIFAR-100 epochs at batch 4096), no gradient clipping (sparsify).
- b_pre = mean of the whole training set (the paper's "empirical mean"; sparsify used the first batch).
- AuxK off by default (sparsify's default). When on: coefficient 1/32, k_aux = d/2, decoded WITHOUT b_pre (the fix
  of sparsify #132), residual detached, normalised by the batch total variance (sparsify). A latent is dead after
  `dead_threshold` samples without firing; the default is one epoch (N samples), since sparsify's 10M-token
  threshold never fires on a 50k-image cache.
- PASS (labels given, w_aux > 0): loss + w_aux * prototype.pass_loss (see prototype.py).
"""
from __future__ import annotations


import torch
from tqdm.auto import tqdm

from .prototype import pass_loss
from .sae import TopKSAE


def batch_fvu(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """sum ||x - x_hat||^2 / sum ||x - mean_batch(x)||^2, in float32 (sparsify's training loss)."""
    x, x_hat = x.float(), x_hat.float()
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)


def auxk_loss(sae: TopKSAE, pre: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor, k_aux: int,
              total_variance: torch.Tensor | float) -> torch.Tensor:
    """Gao et al.'s AuxK. pre: (B, n) pre-activations, residual: (B, d) = x - x_hat, dead: (n,) bool.
    Normalised like sparsify's: by the batch's total variance sum ||x - mean(x)||^2 (the FVU denominator)."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    scale = min(n_dead / k_aux, 1.0)          # from the requested k_aux, before clamping (Gao et al.; sparsify)
    k_aux = min(k_aux, n_dead)
    vals, idx = torch.where(dead, pre, -torch.inf).topk(k_aux, dim=-1, sorted=False)
    e_hat = sae.decode(vals.clamp_min(0), idx, bias=False)     # no b_pre: the residual has none (sparsify #132)
    e = residual.detach().float()
    return scale * (e_hat.float() - e).pow(2).sum() / max(float(total_variance), 1e-12)


@torch.no_grad()
def remove_parallel_grad(sae: TopKSAE) -> None:
    """Project each W_dec row's gradient onto the tangent space of the unit sphere at that row."""
    if sae.W_dec.grad is not None:
        W, g = sae.W_dec, sae.W_dec.grad
        g.sub_((g * W).sum(-1, keepdim=True) * W)


def epoch_batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split a permutation into batches; a remainder under half a batch joins the previous batch. A last batch of
    one or two vectors has (almost) no variance, so its FVU (÷ batch variance) explodes and poisons Adam's state."""
    batches = list(perm.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size // 2:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to 1 over `warmup` steps, then linear decay to 0 at `total`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


class FiringStats:
    """Which latents fired: `since_fired` (n,) samples since each latent last fired (AuxK's dead test) and
    `fired` (n,) whether it fired this epoch (the dead fraction in the history). Updated without host syncs."""

    def __init__(self, n_latents: int, device):
        self.since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)
        self.fired = torch.zeros(n_latents, dtype=torch.bool, device=device)

    @torch.no_grad()
    def update(self, vals: torch.Tensor, idx: torch.Tensor) -> None:
        """vals, idx: (B, k) codes of one batch; a latent fires when selected with a positive value."""
        active = torch.zeros_like(self.fired, dtype=vals.dtype).index_add_(0, idx.flatten(), (vals > 0).flatten().to(vals.dtype)) > 0
        self.fired |= active
        self.since_fired = torch.where(active, 0, self.since_fired + vals.shape[0])


def train_step(sae: TopKSAE, opt, sched, x: torch.Tensor, stats: FiringStats, y: torch.Tensor | None = None, *,
               amp: bool = False, auxk_alpha: float = 0.0, k_aux: int = 384, dead_threshold: int = 0,
               w_aux: float = 0.0) -> torch.Tensor:
    """One optimisation step on x: (B, d) (labels y: (B,) for PASS). Returns detached (loss, fvu, auxk, pass, L0 sum)
    as a (5,) float64 tensor on the device, without a host sync (AuxK with dead latents adds one)."""
    dev = x.device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        vals, idx = sae.encode_sparse(x, check=False)                 # data were validated once by the caller
    vals = vals.float()
    x_hat = sae.decode(vals, idx)
    fvu = batch_fvu(x, x_hat)
    loss, aux, pas = fvu, torch.zeros((), device=dev), torch.zeros((), device=dev)
    if auxk_alpha > 0:
        dead = stats.since_fired > dead_threshold
        if dead.any():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                pre = sae.pre_acts(x, check=False)
            aux = auxk_loss(sae, pre.float(), x - x_hat, dead, k_aux, (x - x.mean(0)).pow(2).sum())
            loss = loss + auxk_alpha * aux
    if w_aux > 0:
        pas = pass_loss(vals, idx, y, sae.n_latents)
        loss = loss + w_aux * pas
    opt.zero_grad(set_to_none=True)
    loss.backward()
    remove_parallel_grad(sae)
    opt.step()
    sched.step()
    sae.normalize_decoder()                                           # rows exactly unit norm after every step
    stats.update(vals.detach(), idx)
    return torch.stack([loss.detach(), fvu.detach(), aux.detach(), pas.detach(),
                        (vals > 0).sum().to(loss.dtype)]).double()


def check_training_data(X: torch.Tensor, labels: torch.Tensor | None) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a float tensor (N, d); got {getattr(X, 'shape', type(X).__name__)}")
    if X.shape[0] < 2:
        raise ValueError("need at least 2 training vectors")
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or inf; clean the activations (e.g. rebuild the feature cache)")
    spread = (X - X[0]).abs().amax()
    if spread == 0:
        raise ValueError("X is constant (every row is the same): there is nothing to learn; check the features")
    if X.abs().amax() > 1e6 or spread < 1e-6:
        raise ValueError(f"X is absurdly scaled (max |x| {X.abs().amax():.3g}, spread {spread:.3g}); CLIP "
                         "activations are of order 1: rescale X (or check how it was produced)")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != X.shape[0]):
        raise ValueError(f"labels must be (N,) = ({X.shape[0]},); got {tuple(labels.shape)}")


def train_sae(X: torch.Tensor, *, n_latents: int | None = None, expansion: int = 4, k: int = 64,
              epochs: int = 30, batch_size: int = 4096, lr: float = 5e-4, warmup_frac: float = 0.05,
              auxk_alpha: float = 0.0, k_aux: int | None = None, dead_threshold: int | None = None,
              labels: torch.Tensor | None = None, w_aux: float = 0.0, bf16: bool = False, seed: int = 0,
              device: str | torch.device | None = None, progress: bool = True,
              sae: TopKSAE | None = None) -> tuple[TopKSAE, dict[str, list[float]]]:
    """Train a TopKSAE on X: (N, d). Returns (sae on `device`, history of per-epoch loss, fvu, dead_frac, l0, ...).

    `labels: (N,)` with `w_aux > 0` trains a PASS SAE. `bf16` runs the encoder GEMM under bf16 autocast (weights,
    loss and Adam stay fp32).
    The same seed gives the same SAE (on the same device and library versions).
    """
    check_training_data(X, labels)
    if w_aux > 0 and labels is None:
        raise ValueError("PASS (w_aux > 0) needs class labels")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    N, d = X.shape
    n_latents = n_latents or expansion * d
    if sae is None:
        sae = TopKSAE(d, n_latents, k, seed=seed)
    elif sae.d_in != d:
        raise ValueError(f"SAE expects d={sae.d_in}, data has d={d}")
    sae = sae.to(device).requires_grad_(True)
    X = X.to(device, torch.float32)
    y = labels.to(device) if labels is not None else None
    with torch.no_grad():
        sae.b_pre.copy_(X.double().mean(0).float())            # the paper's "empirical mean" (whole train set)
        sae.normalize_decoder()

    batch_size = min(batch_size, N)
    steps_per_epoch = len(epoch_batches(torch.arange(N), batch_size))
    total = epochs * steps_per_epoch
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999), fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(max(1, round(warmup_frac * total)), total))
    k_aux = k_aux or d // 2
    dead_threshold = dead_threshold or N
    gen = torch.Generator(device=device).manual_seed(seed)
    hist: dict[str, list[float]] = {key: [] for key in ("loss", "fvu", "auxk", "pass", "dead_frac", "l0", "lr")}
    stats = FiringStats(sae.n_latents, device)
    amp = bf16                     # bf16 autocast for the encoder GEMM (CUDA; also works on CPU, for tests)
    for _epoch in tqdm(range(epochs), disable=not progress, desc="train SAE"):
        sums = torch.zeros(5, device=device, dtype=torch.float64)   # loss, fvu, auxk, pass (x B), nonzeros
        stats.fired.zero_()
        for b in epoch_batches(torch.randperm(N, device=device, generator=gen), batch_size):
            terms = train_step(sae, opt, sched, X[b], stats, None if y is None else y[b], amp=amp,
                               auxk_alpha=auxk_alpha, k_aux=k_aux, dead_threshold=dead_threshold, w_aux=w_aux)
            sums += terms * terms.new_tensor([len(b)] * 4 + [1])
        s = (sums / N).tolist()
        for key, v in zip(("loss", "fvu", "auxk", "pass", "l0"), s):
            hist[key].append(v)
        hist["dead_frac"].append(1.0 - stats.fired.float().mean().item())
        hist["lr"].append(sched.get_last_lr()[0])
    sae.eval().requires_grad_(False)      # inference from here on: encode/decode build no autograd graph
    return sae, hist
