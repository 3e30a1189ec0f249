"""SAE training throughput (vectors/s): vs2mini's sparse TopKSAE step vs a naive dense top-k SAE vs EleutherAI sparsify.

vs2mini     the inner loop of `vs2mini.trainer.train_sae`: its own `train_step` (encode_sparse under bf16 autocast
            if asked, sparse decode, batch_fvu, the hand-written sparse encoder backward, remove_parallel_grad,
            Adam, LR schedule, normalize_decoder, the dead-latent bookkeeping). `--bank` runs the real `train_sae`.
dense       what a user writes first: z = zeros.scatter(topk(relu(x W^T + b))), x_hat = z W_dec + b_pre, the
            same FVU loss, autograd, the same Adam / schedule / decoder constraint.
sparsify    EleutherAI sparsify (`pip install --no-deps -r benchmarks/requirements.txt`): its own encoder
            (`sparsify.fused_encoder`: linear + topk, embedding_bag / index_add_ backward) and decoder (its Triton
            embedding_bag on CUDA, torch's embedding_bag elsewhere, as sparsify picks), SparseCoder.forward's loss,
            its decoder-gradient projection and unit-norm step, loaded from the installed wheel without the
            package __init__ (which imports its language-model trainer: transformers, datasets, accelerate).
All three start from the same weights, see the same batches and use the same optimiser (fused Adam where torch
has it) and schedule, so the figures compare the SAE step itself. Precision is the same on all sides of a row:
fp32 rows run without autocast anywhere; bf16 rows run each path's forward under bf16 autocast (vs2mini: the
encoder GEMM, as `train_sae(bf16=True)`; dense and sparsify: their whole forward, as sparsify does on CUDA).
Also: same loss curves (fp32), bf16 against fp32 (loss within a stated tolerance), the encoder weight gradient
alone three ways, fused against unfused Adam, and `--bank N`: wall time of the real `train_sae`.
FLOP floor per step: the encoder GEMM 2*B*d*n at the matmul rate measured in this run for that precision.
"""
from __future__ import annotations

import math
import sys

import common
from baselines import DenseTopKSAE, SparsifySAE, dense_steps, load_sparsify
import torch
import torch.nn.functional as F

from vs2mini.method.sae import TopKSAE
from vs2mini.method.train import FiringStats, fused_adam_available, lr_lambda, train_sae, train_step


def synthetic_bank(n: int, d: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """(n, d) float32: 32-sparse combinations of 4d random atoms + an offset + noise (a little like CLS tokens)."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(4 * d, d, generator=g) / math.sqrt(d)
    idx = torch.randint(0, 4 * d, (n, 32), generator=g)
    w = torch.empty(n, 32).exponential_(generator=g)
    x = F.embedding_bag(idx, atoms, per_sample_weights=w, mode="sum") + torch.randn(d, generator=g)
    return (x + 0.05 * torch.randn(n, d, generator=g)).to(device)


def make_opt(model, dev, lr=5e-4, total=1000, fused=None):
    fused = fused_adam_available(dev) if fused is None else fused        # as trainer.train_sae
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), fused=fused)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(max(1, round(0.05 * total)), total))


def vs2mini_steps(sae, opt, sched, X, batches, amp):
    """trainer.train_sae's inner loop: its own `train_step` (AuxK and PASS off, as in the default run)."""
    stats = FiringStats(sae.n_latents, X.device)
    return [train_step(sae, opt, sched, X[b], stats, amp=amp)[0] for b in batches]


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


def fresh(kind, d, n, k, X, dev, kernels=None):
    sae = TopKSAE(d, n, k, seed=0).to(dev)
    with torch.no_grad():
        sae.b_pre.copy_(X.double().mean(0).float())
        sae.normalize_decoder()
    if kind == "vs2mini":
        return sae
    return DenseTopKSAE(sae).to(dev) if kind == "dense" else SparsifySAE(sae, kernels).to(dev)


def adam_step_ms(n, d, dev, repeats):
    """One optimiser step on the SAE's parameters (n, d): fused vs unfused Adam, interleaved; and equal values."""
    sides = {}
    for fused in (True, False):
        g = torch.Generator(device=dev).manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(*shape, device=dev, generator=g)) for shape in ((n, d), (n,), (n, d), (d,))]
        for p_ in ps:
            p_.grad = torch.randn(p_.shape, device=dev, generator=g)
        sides[fused] = (ps, torch.optim.Adam(ps, lr=5e-4, fused=fused))
    t = common.time_side_by_side({"fused": sides[True][1].step, "unfused": sides[False][1].step}, dev, 1, repeats)
    diff = max((a - b).abs().max().item() for a, b in zip(sides[True][0], sides[False][0]))
    return t, diff


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="n:k,... (default 3072:64,3072:256,24576:64,24576:256; "
                   "--cpu 3072:64,3072:256,12288:64)")
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--batch", type=int, default=None, help="default 4096 (--cpu 1024, quick 256)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per round (default 20; --cpu 3; quick 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3)")
    p.add_argument("--check-steps", type=int, default=None, help="steps of the loss-curve checks (default 50; quick 10)")
    p.add_argument("--bf16-tol", type=float, default=1e-3, help="|final loss bf16 - fp32| allowed (absolute FVU)")
    p.add_argument("--bank", type=int, default=None, help="also time train_sae on an N x d bank (default 50000; "
                   "--cpu and quick: 0 = skip)")
    p.add_argument("--epochs", type=int, default=30, help="epochs for --bank")
    p.add_argument("--no-sparsify", action="store_true", help="skip the sparsify baseline")
    p.add_argument("--bf16-baselines", action="store_true", help="bf16 rows for dense and sparsify on a CPU too")
    a = p.parse_args()
    dev, q, cpu = common.get_device(a.device, a.cpu), a.quick, a.cpu
    configs = [tuple(map(int, c.split(":"))) for c in (a.configs or ("1024:32" if q else "3072:64,3072:256,12288:64"
               if cpu else "3072:64,3072:256,24576:64,24576:256")).split(",")]
    B, steps = a.batch or (256 if q else 1024 if cpu else 4096), a.steps or (2 if q else 3 if cpu else 20)
    R, check_steps = a.repeats or 3, a.check_steps or (10 if q else 20 if cpu else 50)
    bank = a.bank if a.bank is not None else (0 if q or cpu else 50000)
    info, roof = common.device_info(dev), common.rooflines(dev, q or cpu)
    kernels = None if a.no_sparsify else load_sparsify(dev)
    info["sparsify"] = kernels[0] if kernels else None
    print(common.header("bench_sae", info, roof, q))
    print(f"sparsify: {info['sparsify'] or 'not installed (pip install --no-deps -r benchmarks/requirements.txt)'}; "
          f"fused Adam on {dev.type}: {fused_adam_available(dev)}")
    X = synthetic_bank(max(8 * B, check_steps * B // 4), a.d, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    batches = [torch.randperm(len(X), device=dev, generator=g)[:B] for _ in range(max(steps, check_steps))]
    run = {"vs2mini": vs2mini_steps, "dense": dense_steps}
    if kernels:
        run["sparsify"] = dense_steps                  # the same loop around a different module
    checks = common.Checks()
    rows, loss_rows, gw_rows, adam_rows, bf16_rows = [], [], [], [], []
    # bf16 rows for all three paths on CUDA; on a CPU without native bf16 the dense path's bf16 autocast is 20x
    # slower than its fp32, so there only the vs2mini fp32 / bf16 comparison runs (--bf16-baselines forces them).
    amps = (False, True) if dev.type == "cuda" or a.bf16_baselines else (False,)
    for n, k in configs:
        gw = grad_w_variants(B, a.d, n, k, dev)
        gw_rows.append(dict(n=n, k=k, batch=B, **gw))
        checks.check(f"encoder weight gradient agrees n={n} k={k}", gw["max_rel_diff"] <= 1e-4,
                     f"max rel diff {gw['max_rel_diff']:.1e} <= 1e-4")
        # Same loss curves: identical init and batches; fp32 for all paths, and vs2mini in bf16.
        curves = {}
        for kind in run:
            m = fresh(kind, a.d, n, k, X, dev, kernels)
            curves[kind] = torch.stack(run[kind](m, *make_opt(m, dev), X, batches[:check_steps], False)).cpu()
        m = fresh("vs2mini", a.d, n, k, X, dev)
        curves["vs2mini bf16"] = torch.stack(vs2mini_steps(m, *make_opt(m, dev), X, batches[:check_steps], True)).cpu()
        for other in [c for c in curves if c != "vs2mini"]:
            c0, c1 = curves["vs2mini"], curves[other]
            rel = ((c0 - c1).abs() / c1.abs()).max().item()
            final = abs(c0[-1] - c1[-1]).item()
            loss_rows.append(dict(n=n, k=k, steps=check_steps, vs2mini_fp32_vs=other, loss0=c1[0].item(),
                                  final_vs2mini=c0[-1].item(), final_other=c1[-1].item(), final_abs_diff=final,
                                  final_rel_diff=final / c1[-1].item(), max_rel_diff=rel))
            if other == "vs2mini bf16":
                checks.check(f"bf16 loss n={n} k={k}", final <= a.bf16_tol,
                             f"|final bf16 - fp32| {final:.1e} <= {a.bf16_tol:g}")
            else:
                checks.check(f"loss curve = {other} n={n} k={k}", final / c1[-1].item() < 0.01,
                             f"final loss rel diff {final / c1[-1].item():.1e} < 1%")
        t, diff = adam_step_ms(n, a.d, dev, 5 if not q else 2)
        adam_rows.append(dict(n=n, d=a.d, fused_ms=common.ms(t["fused"]), unfused_ms=common.ms(t["unfused"]),
                              speedup=common.ratio(t["ratio:unfused"]), max_abs_diff=diff))
        checks.check(f"fused Adam = unfused n={n}", diff <= 1e-5, f"max |param diff| {diff:.1e} <= 1e-5")
        # The bf16 option of vs2mini's trainer against its fp32 default, interleaved (what a CPU profile would gain).
        models = {amp: fresh("vs2mini", a.d, n, k, X, dev) for amp in (False, True)}
        opts = {amp: make_opt(models[amp], dev) for amp in (False, True)}
        t = common.time_side_by_side({prec: (lambda amp=amp: vs2mini_steps(models[amp], *opts[amp], X,
                                                                           batches[:steps], amp))
                                      for prec, amp in (("fp32", False), ("bf16", True))}, dev, 1, R)
        bf16_rows.append(dict(n=n, k=k, batch=B, fp32_ms_step=common.ms({k_: v / steps for k_, v in t["fp32"].items()
                                                                          if k_.endswith("_s")}),
                              bf16_ms_step=common.ms({k_: v / steps for k_, v in t["bf16"].items() if k_.endswith("_s")}),
                              bf16_speedup=f"{1 / t['ratio:bf16']['median_s']:.2f} [{1 / t['ratio:bf16']['max_s']:.2f}-"
                                           f"{1 / t['ratio:bf16']['min_s']:.2f}]",
                              final_loss_abs_diff=loss_rows[-1]["final_abs_diff"]))
        del models, opts
        for amp in amps:
            floor_s = 2 * B * a.d * n / 1e12 / roof["bf16_tflops" if amp else "fp32_tflops"]
            models = {kind: fresh(kind, a.d, n, k, X, dev, kernels) for kind in run}
            opts = {kind: make_opt(models[kind], dev) for kind in run}
            fns = {kind: (lambda kind=kind: run[kind](models[kind], *opts[kind], X, batches[:steps], amp)) for kind in run}
            t = common.time_side_by_side(fns, dev, 1, R)
            prec = "bf16" if amp else "fp32"
            for kind in run:
                st = {key: v / steps for key, v in t[kind].items() if key.endswith("_s")}
                rows.append(dict(n=n, k=k, batch=B, prec=prec, path=kind, ms_step=common.ms(st),
                                 vec_s=B / st["median_s"], pct_enc_floor=100 * floor_s / st["median_s"],
                                 vs2mini_speedup=common.ratio(t[f"ratio:{kind}"]) if kind != "vs2mini" else None))
            del models, opts
    print(common.table(rows, ["n", "k", "batch", "prec", "path", "ms_step", "vec_s", "vs2mini_speedup", "pct_enc_floor"],
                       {"vec_s": ".0f", "pct_enc_floor": ".1f"}))
    print("ms_step: median [min-max] over the rounds; vs2mini_speedup: this path's time / vs2mini's, per round "
          "(> 1: vs2mini is faster).\npct_enc_floor: the encoder GEMM alone (2*B*d*n FLOPs at the measured rate of "
          "that precision) over the step time.")
    print("\nsame loss curves (identical init and batches):")
    print(common.table(loss_rows, list(loss_rows[0]), {"final_abs_diff": ".1e", "final_rel_diff": ".1e",
                                                        "max_rel_diff": ".1e", "loss0": ".4f",
                                                        "final_vs2mini": ".4f", "final_other": ".4f"}))
    print("\nencoder weight gradient alone, fp32, ms (the same (n, d) result three ways; the vs2mini column also "
          "yields grad_x):")
    print(common.table(gw_rows, list(gw_rows[0]), {**{c: ".2f" for c in gw_rows[0]}, "max_rel_diff": ".1e"}))
    print("\nvs2mini's bf16 option against its fp32 default (the trainer's own step, interleaved; final_loss_abs_diff "
          "from the loss-curve check above):")
    print(common.table(bf16_rows, list(bf16_rows[0]), {"final_loss_abs_diff": ".1e"}))
    print("\nAdam step alone on the SAE's parameters (W_enc, b_enc, W_dec, b_pre), ms, interleaved:")
    print(common.table(adam_rows, list(adam_rows[0]), {"max_abs_diff": ".1e"}))
    bank_rows = []
    if bank:
        Xb = torch.randn(bank, a.d, generator=torch.Generator().manual_seed(1))
        for amp in (False, True):
            train_sae(Xb[:4096], n_latents=3072, k=64, epochs=1, bf16=amp, device=dev, progress=False)  # warm-up
            with common.Stopwatch(dev) as sw:
                _, hist = train_sae(Xb, n_latents=3072, k=64, epochs=a.epochs, bf16=amp, device=dev, progress=False)
            nsteps = a.epochs * math.ceil(bank / min(4096, bank))
            bank_rows.append(dict(bank=bank, d=a.d, n=3072, k=64, epochs=a.epochs, prec="bf16" if amp else "fp32",
                                  wall_s=sw.s, steps=nsteps, ms_step=1e3 * sw.s / nsteps,
                                  vec_s=a.epochs * bank / sw.s, final_fvu=hist["fvu"][-1]))
        print(f"\nvs2mini.trainer.train_sae on a random {bank} x {a.d} bank (one run each; includes moving X to the "
              "device):")
        print(common.table(bank_rows, list(bank_rows[0]), {"wall_s": ".2f", "ms_step": ".2f", "vec_s": ".0f"}))
    rc = checks.report()
    common.write_json(a.json, "bench_sae", a, info, roof, {"steps": rows, "loss_check": loss_rows, "grad_w_ms": gw_rows,
                                                           "adam": adam_rows, "bf16": bf16_rows, "bank": bank_rows, "checks": checks.rows})
    sys.exit(rc)


if __name__ == "__main__":
    main()
