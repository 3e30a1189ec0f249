"""SAE training throughput (vectors/s): vs2mini's sparse TopKSAE step vs a naive dense top-k SAE, same run.

vs2mini     the inner loop of `vs2mini.trainer.train_sae`, step for step (encode_sparse(check=False) under bf16
            autocast if asked, sparse decode, batch_fvu, backward through the hand-written sparse encoder backward
            (`sae._SparseEncoder`: grad_x and the encoder weight gradient from one `F.embedding_bag`),
            remove_parallel_grad, fused Adam, LR schedule, normalize_decoder, the sync-free dead-latent bookkeeping
            (index_add_ into `active`, torch.where on `since_fired`)). Keep `vs2mini_steps` in sync with
            trainer.py; `--bank` runs the real `train_sae`.
dense       what a user writes first: z = zeros.scatter(topk(relu(x W^T + b))), x_hat = z W_dec + b_pre, the
            same FVU loss, autograd, the same Adam / schedule / decoder constraint (bf16 = autocast everywhere).
Also: "same loss curve" (both from identical weights on identical batches, fp32), peak GPU memory and a batch
rule for a 16 GB T4, the encoder weight gradient alone three ways (vs2mini's embedding_bag weight gradient, and
two alternatives written here: index_add_ over a materialised (B, k, d) tensor, a dense GEMM), and `--bank N`:
wall time of the real `train_sae` on an N x 768 random bank (30 epochs).
FLOP floor per step: the encoder GEMM 2*B*d*n (the sparse recipe's only dense GEMM) at the matmul rate measured
in this run for that precision (fp32 rows: fp32 rate, TF32 off as in torch's default; bf16 rows: bf16 rate).
"""
from __future__ import annotations

import math

import common
import torch
import torch.nn as nn
import torch.nn.functional as F

from vs2mini.sae import TopKSAE
from vs2mini.trainer import FiringStats, batch_fvu, lr_lambda, remove_parallel_grad, train_sae, train_step


def synthetic_bank(n: int, d: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """(n, d) float32: 32-sparse combinations of 4d random atoms + an offset + noise (a little like CLS tokens)."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(4 * d, d, generator=g) / math.sqrt(d)
    idx = torch.randint(0, 4 * d, (n, 32), generator=g)
    w = torch.empty(n, 32).exponential_(generator=g)
    x = F.embedding_bag(idx, atoms, per_sample_weights=w, mode="sum") + torch.randn(d, generator=g)
    return (x + 0.05 * torch.randn(n, d, generator=g)).to(device)


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


def make_opt(model, dev, lr=5e-4, total=1000):
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), fused=dev.type == "cuda")
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(max(1, round(0.05 * total)), total))


def vs2mini_steps(sae, opt, sched, X, batches, amp):
    """trainer.train_sae's inner loop: its own `train_step` (AuxK and PASS off, as in the default run)."""
    stats = FiringStats(sae.n_latents, X.device)
    return [train_step(sae, opt, sched, X[b], stats, amp=amp)[0] for b in batches]


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


def grad_w_variants(B, d, n, k, dev) -> dict:
    """ms of the encoder weight gradient grad_W[j] = sum_b g[b, j] x[b] -> (n, d), three ways (same result):
      embedding_bag (vs2mini)  what `sae._SparseEncoder.backward` does: grad_x = embedding_bag(idx, W, g) and
                               grad_W = its weight gradient against x (sort + segment sum, no (B, k, d) tensor).
                               The time includes the embedding_bag forward, which is vs2mini's grad_x, so this
                               row computes both gradients; the other two compute grad_W only.
      index_add (B,k,d)        the previous vs2mini backward, kept here as an alternative: materialise
                               g[b, j] x[b] as a (B, k, d) tensor and index_add_ it into (n, d).
      dense GEMM               scatter g into a dense (B, n) matrix and multiply: scatter(g)^T x.
    Also returns the largest relative difference of the two alternatives from vs2mini's result."""
    g0 = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(B, d, device=dev, generator=g0)
    idx = torch.rand(B, n, device=dev, generator=g0).topk(k, dim=1).indices   # distinct per row, as from topk
    g = torch.randn(B, k, device=dev, generator=g0)
    W = torch.randn(n, d, device=dev, generator=g0)

    def embedding_bag_vs2mini():
        with torch.enable_grad():
            W_ = W.detach().requires_grad_(True)
            grad_x = F.embedding_bag(idx, W_, per_sample_weights=g, mode="sum")
            return torch.autograd.grad(grad_x, W_, x)[0]

    fns = {"embedding_bag (vs2mini)": embedding_bag_vs2mini,
           "index_add (B,k,d)": lambda: torch.zeros(n, d, device=dev).index_add_(
               0, idx.flatten(), (g.unsqueeze(-1) * x.unsqueeze(1)).flatten(0, 1)),
           "dense GEMM": lambda: torch.zeros(B, n, device=dev).scatter_(1, idx, g).T @ x}
    out = {name: 1e3 * common.time_fn(fn, dev, 2, 10)["median_s"] for name, fn in fns.items()}
    ref = fns["embedding_bag (vs2mini)"]()
    scale = ref.abs().max().clamp_min(1e-12)
    out["max_rel_diff"] = max(((fns[m]() - ref).abs().max() / scale).item() for m in list(fns)[1:])
    return out


def fresh(kind, d, n, k, X, dev):
    sae = TopKSAE(d, n, k, seed=0).to(dev)
    with torch.no_grad():
        sae.b_pre.copy_(X.double().mean(0).float())
        sae.normalize_decoder()
    return sae if kind == "vs2mini" else DenseTopKSAE(sae).to(dev)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="n:k,... (default 3072:64,3072:256,24576:64,24576:256)")
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--batch", type=int, default=None, help="default 4096 (quick 256)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default 20; quick 3)")
    p.add_argument("--check-steps", type=int, default=50, help="steps of the same-loss-curve check (fp32)")
    p.add_argument("--bank", type=int, default=None, help="also time train_sae on an N x d bank (default 50000; "
                   "quick 0 = skip)")
    p.add_argument("--epochs", type=int, default=30, help="epochs for --bank")
    p.add_argument("--trace", action="store_true", help="print the torch.profiler top kernels of one step per path")
    a = p.parse_args()
    dev, q = common.get_device(a.device), a.quick
    configs = [tuple(map(int, c.split(":"))) for c in
               (a.configs or ("1024:32" if q else "3072:64,3072:256,24576:64,24576:256")).split(",")]
    B, steps = a.batch or (256 if q else 4096), a.steps or (3 if q else 20)
    bank = a.bank if a.bank is not None else (0 if q else 50000)
    info, roof = common.device_info(dev), common.rooflines(dev, q)
    print(common.header("bench_sae", info, roof, q))
    X = synthetic_bank(max(8 * B, a.check_steps * B // 4), a.d, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    batches = [torch.randperm(len(X), device=dev, generator=g)[:B] for _ in range(max(steps, a.check_steps))]
    amps = (False, True) if dev.type == "cuda" else (False,)   # the trainer ignores bf16 on CPU
    rows, loss_rows, gw_rows, run = [], [], [], {"vs2mini": vs2mini_steps, "dense": dense_steps}
    for n, k in configs:
        gw_rows.append(dict(n=n, k=k, batch=B, **grad_w_variants(B, a.d, n, k, dev)))
        # Same loss curve: identical init and batches, fp32, `check_steps` steps.
        curves = {}
        for kind in run:
            m = fresh(kind, a.d, n, k, X, dev)
            curves[kind] = torch.stack(run[kind](m, *make_opt(m, dev), X, batches[:a.check_steps], False)).cpu()
        rel = ((curves["vs2mini"] - curves["dense"]).abs() / curves["dense"].abs()).max().item()
        final = abs(curves["vs2mini"][-1] - curves["dense"][-1]).item() / curves["dense"][-1].item()
        loss_rows.append(dict(n=n, k=k, steps=a.check_steps, loss0=curves["dense"][0].item(),
                              final_vs2mini=curves["vs2mini"][-1].item(), final_dense=curves["dense"][-1].item(),
                              final_rel_diff=final, max_rel_diff=rel, within_1pct=final < 0.01))
        for amp in amps:
            floor_s = 2 * B * a.d * n / 1e12 / roof["bf16_tflops" if amp else "fp32_tflops"]
            res = {}
            for kind in run:
                m = fresh(kind, a.d, n, k, X, dev)
                opt, sched = make_opt(m, dev)
                common.reset_peak(dev)
                t = common.time_fn(lambda: run[kind](m, opt, sched, X, batches[:steps], amp), dev, 1, 3)
                step_s = t["median_s"] / steps
                res[kind] = dict(n=n, k=k, batch=B, path=kind, prec="bf16" if amp else "fp32", ms_step=1e3 * step_s,
                                 vec_s=B / step_s, peak_gb=common.peak_mem_gb(dev),
                                 pct_enc_floor=100 * floor_s / step_s)
                if kind == "vs2mini" and not amp and dev.type == "cuda":   # memory at B/4 -> linear batch rule
                    common.reset_peak(dev)
                    b4 = [bb[:B // 4] for bb in batches[:2]]
                    run[kind](m, opt, sched, X, b4, amp)
                    torch.cuda.synchronize(dev)
                    lo = common.peak_mem_gb(dev)
                    per = (res[kind]["peak_gb"] - lo) / (B - B // 4)
                    static = lo - per * (B // 4) - X.numel() * 4 / 2**30   # the bank is not part of the SAE
                    res[kind]["t4_max_batch"] = int((13.0 - static) / per) // 256 * 256 if per > 0 else None
                if a.trace:
                    act = [torch.profiler.ProfilerActivity.CPU] + (
                        [torch.profiler.ProfilerActivity.CUDA] if dev.type == "cuda" else [])
                    with torch.profiler.profile(activities=act) as prof:
                        run[kind](m, opt, sched, X, batches[:3], amp)
                        common.sync(dev)
                    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
                    print(f"-- trace: {kind} n={n} k={k} {'bf16' if amp else 'fp32'} (3 steps)")
                    print(prof.key_averages().table(sort_by=key, row_limit=12))
                del m, opt, sched
            res["vs2mini"]["speedup_vs_dense"] = res["dense"]["ms_step"] / res["vs2mini"]["ms_step"]
            rows += [res["vs2mini"], res["dense"]]
    print(common.table(rows, ["n", "k", "batch", "path", "prec", "ms_step", "vec_s", "speedup_vs_dense",
                              "pct_enc_floor", "peak_gb", "t4_max_batch"],
                       {"vec_s": ".0f", "ms_step": ".2f", "speedup_vs_dense": ".2f", "pct_enc_floor": ".1f",
                        "peak_gb": ".2f"}))
    print("pct_enc_floor: time of the encoder GEMM alone (2*B*d*n FLOPs at the measured matmul rate of that "
          "precision) over the step time.\nt4_max_batch: vs2mini fp32 batch that keeps the SAE's peak under 13 GiB (16 GB T4, no bf16 "
          "tensor cores), from the peaks at B and B/4 (linear fit).")
    print("\nsame loss curve (fp32, identical init and batches):")
    print(common.table(loss_rows, list(loss_rows[0]), {"final_rel_diff": ".2e", "max_rel_diff": ".2e"}))
    print("\nencoder weight gradient alone, fp32, ms (the same (n, d) result three ways; see grad_w_variants; "
          "the vs2mini column also yields grad_x):")
    print(common.table(gw_rows, list(gw_rows[0]), {**{c: ".2f" for c in gw_rows[0]}, "max_rel_diff": ".1e"}))
    bank_rows = []
    if bank:
        Xb = torch.randn(bank, a.d, generator=torch.Generator().manual_seed(1))
        for amp in amps:
            train_sae(Xb[:4096], n_latents=3072, k=64, epochs=1, bf16=amp, device=dev, progress=False)  # warm-up
            with common.Stopwatch(dev) as sw:
                _, hist = train_sae(Xb, n_latents=3072, k=64, epochs=a.epochs, bf16=amp, device=dev, progress=False)
            nsteps = a.epochs * math.ceil(bank / min(4096, bank))
            bank_rows.append(dict(bank=bank, d=a.d, n=3072, k=64, epochs=a.epochs, prec="bf16" if amp else "fp32",
                                  wall_s=sw.s, steps=nsteps, ms_step=1e3 * sw.s / nsteps,
                                  vec_s=a.epochs * bank / sw.s, final_fvu=hist["fvu"][-1]))
        print(f"\nvs2mini.trainer.train_sae on a random {bank} x {a.d} bank (includes moving X to the device):")
        print(common.table(bank_rows, list(bank_rows[0]), {"wall_s": ".2f", "ms_step": ".2f", "vec_s": ".0f"}))
    common.write_json(a.json, "bench_sae", a, info, roof, {"steps": rows, "loss_check": loss_rows,
                                                                   "grad_w_ms": gw_rows, "bank": bank_rows})


if __name__ == "__main__":
    main()
