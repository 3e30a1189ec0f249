"""Steering and evaluation cost on cached CLS tokens: VS2, VS2++ (50-NN over a 50k bank), cls_to_logits.

Each figure has a baseline measured in the same run:
  VS2         `vs2mini.steer.vs2` on Q CLS tokens (sparse decode of the top-k codes)  vs  a dense-code VS2
              (z = scatter(topk), v = (g-1) z W_dec)
  k-NN        `vs2mini.retrieval.knn` (Q queries, 50-NN over the bank, cosine, fp32); floor: the 2*Q*B*D GEMM
  VS2++       `vs2mini.reproduce.vs2pp_eval` as run_reproduce calls it without `bank_dirs`: the bank is decoded
              once to (N, d) directions W_dec^T c (`reproduce.bank_directions`), then chunks of 1024 queries
              gather (1024, 50, d) direction blocks for `steer.vs2pp_from_directions`  vs  the naive dense-code
              path (`vs2pp_dense_codes` below): dense bank codes (N, n), gathered (256, 50, n) code blocks per
              256-query chunk, then `steer.vs2pp`, which decodes them with a dense GEMM. Both give the same
              result by linearity (W_dec^T (cbar+ - cbar-) = mean+ D(c_j) - mean- D(c_j)); `max_abs_diff` checks it.
              `bank_dirs_ms` is `reproduce.bank_directions` alone: run_reproduce computes it once and passes it to
              both of its vs2pp_eval calls, so a reproduce run pays it once, the timed vs2pp_eval call includes it.
  logits      `vs2mini.features.cls_to_logits` (ln_post, proj, text head)  vs  re-encoding the Q images
              (`features.encode_images`, 32-px, bf16 on CUDA), which the CLS-token design avoids
Random SAE weights and random tokens: the cost does not depend on the values. All steering runs in fp32, as in
vs2mini (no autocast); floors use the fp32 matmul rate and the copy bandwidth measured in this run.
"""
from __future__ import annotations

from types import SimpleNamespace

import common
import torch
import torch.nn.functional as F

from vs2mini import reproduce, retrieval, steer
from vs2mini.clip import load_clip
from vs2mini.features import cls_to_logits, encode_images
from vs2mini.sae import TopKSAE


def dense_vs2(x, sae, gamma=1.5, lam=2.1):
    """Naive VS2 through dense codes."""
    pre = sae.pre_acts(x)
    vals, idx = pre.topk(sae.k, dim=-1)
    z = torch.zeros_like(pre).scatter(1, idx, vals)
    return steer.apply_steering(x, (gamma - 1.0) * (z @ sae.W_dec), lam)


def vs2pp_dense_codes(train_cls, test_cls, sae, pos_mask, nn_idx, gamma=1.5, lam=2.1, chunk=256):
    """Naive VS2++: dense bank codes (N, n), gathered per query chunk (Q, M, n), then steer.vs2pp."""
    dev = test_cls.device
    bank = torch.cat([sae.encode(c) for c in train_cls.split(8192)])
    out = [steer.vs2pp(test_cls[s:s + chunk], sae, bank[nn_idx[s:s + chunk].to(dev)], pos_mask[s:s + chunk].to(dev),
                       gamma, lam) for s in range(0, len(test_cls), chunk)]
    return torch.cat(out)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="n:k,... (default 3072:64,3072:256,24576:64; quick 3072:64)")
    p.add_argument("--queries", type=int, default=None, help="test tokens Q (default 10000; quick 256)")
    p.add_argument("--bank", type=int, default=None, help="train bank size (default 50000; quick 2048)")
    p.add_argument("--neighbors", type=int, default=50)
    p.add_argument("--model", default=None, help="CLIP for cls_to_logits (default ViT-B-32-quickgelu; quick tiny)")
    a = p.parse_args()
    dev, q = common.get_device(a.device), a.quick
    configs = [tuple(map(int, c.split(":"))) for c in
               (a.configs or ("3072:64" if q else "3072:64,3072:256,24576:64")).split(",")]
    Q, NB, M = a.queries or (256 if q else 10000), a.bank or (2048 if q else 50000), a.neighbors
    model = a.model or ("vs2mini-tiny" if q else "ViT-B-32-quickgelu")
    info, roof = common.device_info(dev), common.rooflines(dev, q)
    print(common.header("bench_steer", info, roof, q))
    g = torch.Generator().manual_seed(0)
    d, D = 768, 512
    test_cls = (torch.randn(Q, d, generator=g) + torch.randn(d, generator=g)).to(dev)
    train_cls = (torch.randn(NB, d, generator=g) + torch.randn(d, generator=g)).to(dev)
    q_emb, b_emb = torch.randn(Q, D, generator=g).to(dev), torch.randn(NB, D, generator=g).to(dev)
    fp32, bw = roof["fp32_tflops"] * 1e12, roof["copy_gbps"] * 1e9
    rows = []

    def add(what, n, k, t, base_t=None, base=None, floor_s=None, **extra):
        rows.append(dict(what=what, n=n, k=k, Q=Q, ms=1e3 * t, ms_per_10k=1e4 * 1e3 * t / Q, baseline=base,
                         base_ms=None if base_t is None else 1e3 * base_t,
                         speedup=None if base_t is None else base_t / t,
                         floor_ms=None if floor_s is None else 1e3 * floor_s,
                         pct_floor=None if floor_s is None else 100 * floor_s / t, **extra))

    # k-NN (independent of the SAE): reproduce passes CLIP image embeddings, gets indices back on the CPU.
    t_knn = common.time_fn(lambda: retrieval.knn(q_emb, b_emb, M), dev, 1, 5)["median_s"]
    add("knn 50-NN", None, None, t_knn, floor_s=2 * Q * NB * D / fp32, bank=NB)
    nn_idx = retrieval.knn(q_emb, b_emb, M)[1].cpu()
    pos_mask = torch.rand(Q, M, generator=g) < 0.5
    pos_mask[:8] = False                                         # a few queries with an empty S+
    for n, k in configs:
        sae = TopKSAE(d, n, k, seed=0).to(dev)
        with torch.no_grad():
            sae.b_pre.copy_(train_cls.mean(0))
        # VS2
        t = common.time_fn(lambda: steer.vs2(test_cls, sae, 1.5, 2.1), dev, 1, 10)["median_s"]
        tb = common.time_fn(lambda: dense_vs2(test_cls, sae), dev, 1, 10)["median_s"]
        err = (steer.vs2(test_cls, sae) - dense_vs2(test_cls, sae)).abs().max().item()
        add("VS2", n, k, t, tb, "dense-code VS2", 2 * Q * d * n / fp32, max_abs_diff=err)
        # VS2++ as run_reproduce evaluates it (bank decoded to (N, d) directions inside, on every call).
        setup = SimpleNamespace(clip=SimpleNamespace(device=dev), train=SimpleNamespace(cls=train_cls),
                                test=SimpleNamespace(cls=test_cls))
        run = lambda: reproduce.vs2pp_eval(setup, sae, pos_mask, nn_idx, 1.5, 2.1)  # noqa: E731
        alt = lambda: vs2pp_dense_codes(train_cls, test_cls, sae, pos_mask, nn_idx)  # noqa: E731
        common.reset_peak(dev)
        t = common.time_fn(run, dev, 1, 3)["median_s"]
        peak = common.peak_mem_gb(dev)
        common.reset_peak(dev)
        tb = common.time_fn(alt, dev, 1, 3)["median_s"]
        peak_alt = common.peak_mem_gb(dev)
        err = (run() - alt()).abs().max().item()
        t_dirs = common.time_fn(lambda: reproduce.bank_directions(sae, train_cls), dev, 1, 3)["median_s"]
        # floor: read the gathered neighbour directions once (Q*M*d fp32) + the bank encoder GEMM
        floor = Q * M * d * 4 / bw + 2 * NB * d * n / fp32
        add("VS2++ (vs2pp_eval)", n, k, t, tb, "dense bank codes", floor, bank=NB, peak_gb=peak,
            alt_peak_gb=peak_alt, max_abs_diff=err, bank_dirs_ms=1e3 * t_dirs)
        del sae
    # cls_to_logits on Q tokens vs re-encoding Q images
    clip = load_clip(model, None, dev)
    dm, Dm = clip.model.visual.ln_post.normalized_shape[0], clip.model.visual.proj.shape[1]
    cls = torch.randn(Q, dm, generator=g).to(dev)
    head = F.normalize(torch.randn(100, Dm, generator=g), dim=-1).to(dev)
    imgs = torch.randint(0, 256, (Q, 3, 32, 32), dtype=torch.uint8, generator=g)

    def reencode():
        for s in range(0, Q, 256):
            encode_images(clip, imgs[s:s + 256])
    t = common.time_fn(lambda: cls_to_logits(clip, cls, head), dev, 1, 10)["median_s"]
    tb = common.time_fn(reencode, dev, 1, 3)["median_s"]
    add(f"cls_to_logits ({model})", None, None, t, tb, "re-encode images", 2 * Q * (dm * Dm + Dm * 100) / fp32)
    cols = ["what", "n", "k", "Q", "ms", "ms_per_10k", "baseline", "base_ms", "speedup", "floor_ms", "pct_floor",
            "peak_gb", "alt_peak_gb", "bank_dirs_ms", "max_abs_diff"]
    print(common.table(rows, cols, {"ms": ".2f", "ms_per_10k": ".2f", "base_ms": ".2f", "speedup": ".2f",
                                    "floor_ms": ".3f", "pct_floor": ".1f", "peak_gb": ".2f", "alt_peak_gb": ".2f",
                                    "bank_dirs_ms": ".2f", "max_abs_diff": ".1e"}))
    print("speedup = baseline ms / vs2mini ms (< 1: the baseline is faster). pct_floor = FLOP/byte floor / measured.\n"
          "VS2++ floor = gathered directions read once (Q*50*d*4 B at the copy bandwidth) + the bank encoder GEMM.\n"
          "alt_peak_gb = peak GPU memory of the dense-code baseline; bank_dirs_ms = reproduce.bank_directions alone.")
    common.write_json(a.json, "bench_steer", a, info, roof, rows)


if __name__ == "__main__":
    main()
