"""Feature-extraction throughput (images/s): vs2mini's path vs the usual open_clip + PIL + DataLoader path.

Each precision is compared with the same precision, the two paths interleaved round by round:
  vs2mini       `vs2mini.features.extract_features(amp=...)` on an in-memory uint8 `ImageDataset` (no DataLoader;
                device-side resize and normalisation; on CUDA the uint8 images are pinned and copied non-blocking)
  usual         a torchvision-style Dataset of PIL images + open_clip's eval transform + DataLoader(num_workers) +
                `model.encode_image`, in the same precision (fp32, or the same bf16 autocast)
  model-only    `model.encode_image` on an already-preprocessed batch on the device, same precision: the ceiling
                of any input pipeline
"% of matmul" is achieved FLOP/s over the dense matmul rate of the precision actually used (fp32 rows: the fp32
rate, TF32 off; bf16 rows: the bf16 rate), both measured in this run. The package default is fp32 features
(`DataSettings.feature_amp = False`); bf16 is the option, and its CLS tokens are checked against fp32 (cosine).
Random weights (`load_clip(name, None)`) and random uint8 images: same FLOPs as the real thing, no downloads.
FLOPs per image come from the architecture (`common.vit_image_flops`; 8.82 / 35.13 GFLOPs for B/32 / B/16).
"""
from __future__ import annotations

import os
import sys

import common  # first: puts the repository root on sys.path
from baselines import PILImages, usual_extract
import open_clip
import torch

from vs2mini.clip.models import load_clip
from vs2mini.data.images import ImageDataset
from vs2mini.clip.features import extract_features
from vs2mini.clip.preprocess import preprocess_batch, preprocess_config


def random_dataset(n: int, size: int, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 100, (n,), generator=g)
    return ImageDataset("random", "test", [f"class {i}" for i in range(100)], labels, images=images,
                        image_size=size, synthetic=True)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--models", default=None, help="comma-separated open_clip names "
                   "(default ViT-B-32-quickgelu,ViT-B-16-quickgelu; --cpu ViT-B-32-quickgelu; --quick vs2mini-tiny)")
    p.add_argument("--sizes", default=None, help="input image sides (default 32,224; --cpu 32)")
    p.add_argument("--n-small", type=int, default=None, help="images at sizes < 100 px (default 20000; --cpu 16)")
    p.add_argument("--n-large", type=int, default=None, help="images at sizes >= 100 px (default 8192; --cpu 32)")
    p.add_argument("--batch", type=int, default=None, help="images per batch, both paths (default 256; --cpu 16)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers, usual path (default min(8, CPUs))")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3; --cpu and quick 2)")
    p.add_argument("--min-cos", type=float, default=0.9999, help="required CLS cosine of bf16 against fp32 features")
    a = p.parse_args()
    dev, q = common.get_device(a.device, a.cpu), a.quick
    models = (a.models or ("vs2mini-tiny" if q else "ViT-B-32-quickgelu" if a.cpu else
                           "ViT-B-32-quickgelu,ViT-B-16-quickgelu")).split(",")
    sizes = [int(v) for v in (a.sizes or ("32" if a.cpu else "32,224")).split(",")]
    n_small = a.n_small or (64 if q else 16 if a.cpu else 20000)
    n_large = a.n_large or (16 if q else 32 if a.cpu else 8192)
    batch = a.batch or (16 if a.cpu else 256)
    workers = a.workers if a.workers is not None else min(8, os.cpu_count() or 1)
    R = a.repeats or (2 if q or a.cpu else 3)
    info, roof = common.device_info(dev), common.rooflines(dev, q or a.cpu)
    print(common.header("bench_features", info, roof, q))
    checks, rows = common.Checks(), []
    for name in models:
        clip = load_clip(name, None, dev)
        flops = common.vit_image_flops(clip.model.visual)
        # The usual user's model and transform; same weights as `clip` so the two paths can be compared.
        usual, _, transform = open_clip.create_model_and_transforms(name, pretrained=None, device=dev)
        usual.load_state_dict(clip.model.state_dict())
        usual.eval().requires_grad_(False)
        for size in sizes:
            n = n_small if size < 100 else n_large
            ds = random_dataset(n, size)
            pil = PILImages(ds.images.permute(0, 2, 3, 1).contiguous().numpy(), ds.labels.numpy(), transform)
            cls = {}
            for prec, amp in (("fp32", False), ("bf16", True)):
                rate = roof["bf16_tflops" if amp else "fp32_tflops"]
                base = dict(model=name, size=size, n=n, prec=prec)
                box, w = {}, workers

                def ours():
                    box["ours"] = extract_features(clip, ds, batch, progress=False, amp=amp)

                def theirs():
                    box["usual"] = usual_extract(usual, pil, dev, batch, w, amp)
                try:
                    t = common.time_side_by_side({"vs2mini": ours, "usual": theirs}, dev, 1, R)
                except RuntimeError as e:   # e.g. a small /dev/shm kills the workers: say so, run in-process
                    print(f"usual path: DataLoader with {w} workers failed ({str(e)[:120]}); retrying with 0")
                    w = 0
                    t = common.time_side_by_side({"vs2mini": ours, "usual": theirs}, dev, 1, R)
                x = preprocess_batch(ds.images[:batch].to(dev), preprocess_config(clip.model))

                def model_only():
                    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        clip.model.encode_image(x)
                tm = common.time_fn(model_only, dev, 1, max(3, R))
                cos = torch.nn.functional.cosine_similarity(box["ours"].emb.float(), box["usual"].float(), dim=-1)
                cls[prec] = box["ours"].cls.float()
                for path, st, extra in (("vs2mini", t["vs2mini"], dict(speedup=common.ratio(t["ratio:usual"]),
                                                                          min_cos_vs_usual=cos.min().item())),
                                        ("usual", t["usual"], dict(workers=w)),
                                        ("model-only", {k_: v * n / len(x) for k_, v in tm.items() if k_.endswith("_s")},
                                         {})):
                    ips = n / st["median_s"]
                    rows.append({**base, "path": path, "img_s": ips, "img_s_range": f"{n / st['max_s']:.3g}-"
                                 f"{n / st['min_s']:.3g}", "tflop_s": ips * flops / 1e12,
                                 "pct_matmul": 100 * ips * flops / 1e12 / rate, **extra})
            cos = torch.nn.functional.cosine_similarity(cls["bf16"], cls["fp32"], dim=-1).min().item()
            rows[-6]["min_cls_cos_bf16_vs_fp32"] = cos
            checks.check(f"bf16 CLS = fp32 {name} {size}px", cos >= a.min_cos, f"min cosine {cos:.6f} >= {a.min_cos}")
            del ds, pil
    cols = ["model", "size", "n", "prec", "path", "img_s", "img_s_range", "tflop_s", "pct_matmul", "speedup", "workers",
            "min_cos_vs_usual", "min_cls_cos_bf16_vs_fp32"]
    print(common.table(rows, cols, {"img_s": ".1f", "tflop_s": ".3g", "pct_matmul": ".1f",
                                    "min_cos_vs_usual": ".4f", "min_cls_cos_bf16_vs_fp32": ".6f"}))
    print("speedup: usual time / vs2mini time per interleaved round, same precision, median [min-max]. pct_matmul: "
          "achieved FLOP/s over the measured matmul rate of that row's precision. min_cos_vs_usual: image embeddings "
          "of the two paths (their resizers differ: device bicubic vs PIL bicubic).")
    rc = checks.report()
    common.write_json(a.json, "bench_features", a, info, roof, {"rows": rows, "checks": checks.rows})
    sys.exit(rc)


if __name__ == "__main__":
    main()
