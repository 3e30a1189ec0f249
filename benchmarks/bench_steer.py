"""Steering and retrieval on cached CLS tokens: k-NN, the VS2++ direction step, VS2, VS2++ end to end, cls_to_logits.

Every figure has a baseline run interleaved with it in the same process (fp32 on both sides, as vs2mini steers):
  k-NN           `retrieval.knn` (one similarity block alive at a time)  vs  `knn_two_blocks` below (the
                 previous body: the next block is allocated while the last is still referenced). Same neighbours
                 required (exact equality of the indices); peak memory of each (GPU: allocator peak; CPU: peak RSS).
  VS2++ step     `steer.vs2pp_from_bank` (one sparse product over the bank: embedding_bag with the
                 +1/|S+|, -1/|S-| weights)  vs  the previous VS2++ evaluation body (`vs2pp_gathered`): chunks of
                 1024 queries gathering (1024, 50, d) direction blocks for two masked means. Both from the same
                 decoded bank directions; outputs equal within 1e-5 required. Q queries, 50 neighbours, a 50k bank.
  VS2            `steer.vs2` (sparse decode of the top-k codes)  vs  a dense-code VS2 (z = scatter(topk), z W_dec).
  VS2++ e2e      `steer.vs2pp_from_bank` with the bank decoded inside (`steer.bank_directions`)  vs  the naive dense-code path
                 (`vs2pp_dense_codes`: dense bank codes (B, n), gathered (256, 50, n) code blocks, decoded).
  logits         `features.cls_to_logits`  vs  re-encoding the images (GPU and full mode only).
Random SAE weights and random tokens: the cost does not depend on the values.
"""
from __future__ import annotations

import sys

import common
from baselines import dense_vs2, knn_two_blocks, vs2pp_dense_codes, vs2pp_gathered
import torch
import torch.nn.functional as F

from vs2mini.method import steer
from vs2mini.method import retrieval
from vs2mini.method.sae import TopKSAE


def peak_mb(fn, dev):
    """(peak memory of fn() in MB: GPU allocator peak, or CPU peak RSS added; fn's result)."""
    if dev.type == "cuda":
        common.reset_peak(dev)
        out = fn()
        torch.cuda.synchronize(dev)
        return torch.cuda.max_memory_allocated(dev) / 2**20, out
    return common.peak_rss_mb(fn)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="n:k,... (default 3072:64,3072:256,24576:64; cpu/quick 3072:64)")
    p.add_argument("--queries", type=int, default=None, help="queries for k-NN and the VS2++ step (default 10000)")
    p.add_argument("--dense-queries", type=int, default=None,
                   help="queries for the dense-code baselines (default 10000; --cpu 2000)")
    p.add_argument("--bank", type=int, default=None, help="train bank size (default 50000; quick 2048)")
    p.add_argument("--neighbours", "--neighbors", dest="neighbours", type=int, default=50)
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; --cpu 3; quick 2)")
    p.add_argument("--model", default=None, help="CLIP for cls_to_logits (default ViT-B-32-quickgelu; quick tiny)")
    a = p.parse_args()
    dev, q = common.get_device(a.device, a.cpu), a.quick
    configs = [tuple(map(int, c.split(":"))) for c in
               (a.configs or ("3072:64" if q or a.cpu else "3072:64,3072:256,24576:64")).split(",")]
    Q, NB, M = a.queries or (256 if q else 10000), a.bank or (2048 if q else 50000), a.neighbours
    Qd = a.dense_queries or (256 if q else 2000 if a.cpu else 10000)
    R = a.repeats or (2 if q else 3 if a.cpu else 5)
    info, roof = common.device_info(dev), common.rooflines(dev, q or a.cpu)
    print(common.header("bench_steer", info, roof, q))
    g = torch.Generator().manual_seed(0)
    d, D = 768, 512
    test_cls = (torch.randn(Q, d, generator=g) + torch.randn(d, generator=g)).to(dev)
    train_cls = (torch.randn(NB, d, generator=g) + torch.randn(d, generator=g)).to(dev)
    q_emb, b_emb = torch.randn(Q, D, generator=g).to(dev), torch.randn(NB, D, generator=g).to(dev)
    checks, rows = common.Checks(), []

    def add(what, t, base, n=None, k=None, queries=Q, **extra):
        """t: the side-by-side dict; `base`: the baseline's name in it (the other key)."""
        new = next(key for key in t if not key.startswith("ratio:") and key != base)
        rows.append(dict(what=what, n=n, k=k, Q=queries, vs2mini_ms=common.ms(t[new]),
                         per_10k_ms=1e3 * t[new]["median_s"] * 1e4 / queries, baseline=base,
                         baseline_ms=common.ms(t[base]), speedup=common.ratio(t[f"ratio:{base}"]), **extra))

    # k-NN: peak memory once each (fresh allocations), then timing interleaved, then exact equality.
    knn_new = lambda: retrieval.knn(q_emb, b_emb, M)  # noqa: E731
    knn_old = lambda: knn_two_blocks(q_emb, b_emb, M)  # noqa: E731
    mem_old, (s_old, i_old) = peak_mb(knn_old, dev)
    mem_new, (s_new, i_new) = peak_mb(knn_new, dev)
    t = common.time_side_by_side({"knn": knn_new, "two blocks": knn_old}, dev, 0, max(1, R - 1))
    add("k-NN 50-NN", t, "two blocks", bank=NB, peak_mb=mem_new, base_peak_mb=mem_old)
    checks.check("k-NN same neighbours", torch.equal(i_new, i_old), f"{Q} x {NB}: indices identical "
                 f"(max |sim diff| {(s_new - s_old).abs().max().item():.1e})")
    if mem_new is not None and mem_old is not None:
        checks.check("k-NN peak memory halved", mem_new <= mem_old / 2 or q, f"{mem_new:.0f} MB vs {mem_old:.0f} MB"
                     + (" (not enforced in --quick: a few MB are allocator noise)" if q else ""))
    nn_idx = i_new.cpu()
    pos_mask = torch.rand(Q, M, generator=g) < 0.5
    pos_mask[:8] = False                                         # a few queries with an empty S+
    pos_mask[8:16] = True                                        # and a few with an empty S-

    for n, k in configs:
        sae = TopKSAE(d, n, k, seed=0).to(dev)
        with torch.no_grad():
            sae.b_pre.copy_(train_cls.mean(0))
        dirs = steer.bank_directions(sae, train_cls)
        # The VS2++ direction step (run_reproduce's pseudo and oracle rows each run it once).
        new = lambda: steer.vs2pp_from_bank(test_cls, dirs, nn_idx, pos_mask)  # noqa: E731
        old = lambda: vs2pp_gathered(test_cls, dirs, nn_idx, pos_mask)  # noqa: E731
        t = common.time_side_by_side({"sparse product": new, "gathered": old}, dev, 1, R)
        err = (new() - old()).abs().max().item()
        add("VS2++ direction step", t, "gathered", n, k, max_abs_diff=err)
        checks.check(f"VS2++ step equal n={n} k={k}", err <= 1e-5, f"max |diff| {err:.1e} <= 1e-5")
        checks.check(f"VS2++ step >= 5x n={n} k={k}", t["ratio:gathered"]["median_s"] >= 5 or q,
                     f"median speed-up {t['ratio:gathered']['median_s']:.1f}x" + (" (not enforced in --quick)" if q else ""))
        # VS2 and VS2++ end to end against dense codes, on Qd queries.
        xq = test_cls[:Qd]
        t = common.time_side_by_side({"vs2": lambda: steer.vs2(xq, sae), "dense codes": lambda: dense_vs2(xq, sae)},
                                     dev, 1, R)
        err = (steer.vs2(xq, sae) - dense_vs2(xq, sae)).abs().max().item()
        add("VS2", t, "dense codes", n, k, Qd, max_abs_diff=err)
        checks.check(f"VS2 = dense n={n} k={k}", err <= 1e-4, f"max |diff| {err:.1e} <= 1e-4")
        run = lambda: steer.vs2pp_from_bank(  # noqa: E731
            xq, steer.bank_directions(sae, train_cls), nn_idx[:Qd], pos_mask[:Qd])
        alt = lambda: vs2pp_dense_codes(train_cls, xq, sae, pos_mask[:Qd], nn_idx[:Qd])  # noqa: E731
        mem, out_new = peak_mb(run, dev)
        mem_alt, out_alt = peak_mb(alt, dev)
        t = common.time_side_by_side({"vs2pp_from_bank": run, "dense codes": alt}, dev, 0, max(1, R - 1))
        err = (out_new - out_alt).abs().max().item()
        add("VS2++ e2e (bank decode incl.)", t, "dense codes", n, k, Qd, peak_mb=mem, base_peak_mb=mem_alt,
            max_abs_diff=err)
        checks.check(f"VS2++ = dense codes n={n} k={k}", err <= 1e-4, f"max |diff| {err:.1e} <= 1e-4")
        del sae, dirs
    if not a.cpu:                      # re-encoding 10k images through a ViT on a CPU takes too long to be useful
        from vs2mini.clip.models import load_clip
        from vs2mini.clip.features import cls_to_logits, encode_images
        model = a.model or ("vs2mini-tiny" if q else "ViT-B-32-quickgelu")
        clip = load_clip(model, None, dev)
        dm, Dm = clip.model.visual.ln_post.normalized_shape[0], clip.model.visual.proj.shape[1]
        cls = torch.randn(Q, dm, generator=g).to(dev)
        head = F.normalize(torch.randn(100, Dm, generator=g), dim=-1).to(dev)
        imgs = torch.randint(0, 256, (Q, 3, 32, 32), dtype=torch.uint8, generator=g)

        def reencode():
            for s in range(0, Q, 256):
                encode_images(clip, imgs[s:s + 256])
        t = common.time_side_by_side({"logits": lambda: cls_to_logits(clip, cls, head), "re-encode": reencode},
                                     dev, 1, R)
        add(f"cls_to_logits ({model})", t, "re-encode")
    print(common.table(rows, ["what", "n", "k", "Q", "vs2mini_ms", "per_10k_ms", "baseline", "baseline_ms", "speedup",
                              "peak_mb", "base_peak_mb", "max_abs_diff"],
                       {"per_10k_ms": ".1f", "peak_mb": ".0f", "base_peak_mb": ".0f", "max_abs_diff": ".1e"}))
    print("ms: median [min-max]; speedup: baseline / vs2mini per interleaved round, median [min-max]; "
          "peak_mb: GPU allocator peak or CPU peak RSS added by the call.")
    rc = checks.report()
    common.write_json(a.json, "bench_steer", a, info, roof, {"rows": rows, "checks": checks.rows})
    sys.exit(rc)


if __name__ == "__main__":
    main()
