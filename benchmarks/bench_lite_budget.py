"""CPU seconds of the `lite` book build's heavy pieces, to check that its cells fit 1,200 s and the job 60 minutes.

ViT-B/32 with random weights (`pretrained=None`: the same FLOPs as the OpenAI weights) encodes 224 px images, and
lite's SAE (d = 768, batch 512) trains for a few steps at several (expansion, k). Process CPU time is measured, so
a loaded machine does not inflate it; run it with OMP_NUM_THREADS=1 for per-core figures:

    OMP_NUM_THREADS=1 python benchmarks/bench_lite_budget.py
    python benchmarks/bench_lite_budget.py --speedup 2         # wall time at 1 thread against 2 (or 4, ...)

Multiply by the counts each notebook uses (README, "The book") to get its CPU budget. Measured on 2026-12-04 on one
core of a shared 2-core machine: 137 CPU ms per image; 122 / 228 / 467 / 801 CPU ms per SAE step at
4x/k64, 8x/k128, 16x/k64, 16x/k512 (a lite SAE trains 1,000 steps). On 2026-12-06, `--speedup 2` on the 2-core
machine (idle otherwise), five runs: encoding 1.60-1.96x, SAE 1.75-2.04x faster at 2 threads than at 1.
"""
from __future__ import annotations

import common  # noqa: F401  (puts the repository on sys.path)
import sys
import time

import torch

from vs2mini.method.train import train_sae


def image_ms(n: int = 128, clock=time.process_time) -> float:
    """ms per image of ViT-B/32 encoding n images at 224 px, by `clock` (CPU time by default)."""
    import open_clip
    model = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()
    x = torch.randn(64, 3, 224, 224)
    with torch.no_grad():
        model.encode_image(x[:2])                               # warm-up
        t = clock()
        for i in range(0, n, 64):
            model.encode_image(x[:min(64, n - i)])
    return (clock() - t) / n * 1e3


def sae_step_ms(expansion: int, k: int, epochs: int = 4, clock=time.process_time) -> float:
    """ms per step of lite's SAE training at (expansion, k), by `clock` (CPU time by default)."""
    X = torch.randn(3000, 768)                                  # lite: 3,000 train tokens, 10 % held out
    t = clock()
    _, hist = train_sae(X, expansion=expansion, k=k, epochs=epochs, batch_size=512, min_steps=0, holdout=0.1,
                        progress=False, device="cpu")
    return (clock() - t) / hist["step"][-1] * 1e3


def wall_ms(threads: int) -> tuple[float, float]:
    """Wall ms per image and per 8x/k128 SAE step at `threads` threads."""
    torch.set_num_threads(threads)
    return image_ms(clock=time.perf_counter), sae_step_ms(8, 128, clock=time.perf_counter)


if __name__ == "__main__" and "--speedup" in sys.argv:
    # The thread speed-up that the 60-minute job relies on (README, "The book"): wall time at 1 thread against N.
    n = int(sys.argv[sys.argv.index("--speedup") + 1])
    (e1, s1), (en, sn) = wall_ms(1), wall_ms(n)
    print(f"1 -> {n} threads: encoding {e1:.0f} -> {en:.0f} ms/image ({e1 / en:.2f}x), "
          f"SAE {s1:.0f} -> {sn:.0f} ms/step ({s1 / sn:.2f}x)")
elif __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"ViT-B/32 image encoding: {image_ms():.0f} CPU ms per image")
    for e, k in [(4, 64), (8, 128), (16, 64), (16, 512)]:
        print(f"SAE {e}x k={k}: {sae_step_ms(e, k):.0f} CPU ms per step (batch 512)")
