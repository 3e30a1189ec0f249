"""Feature-extraction throughput (images/s): vs2mini's path vs the usual open_clip + PIL + DataLoader path.

Rows per (model, input size):
  vs2mini       `vs2mini.features.extract_features` on an in-memory uint8 `ImageDataset` (sliced without a
                DataLoader; on CUDA the uint8 images are pinned once per call and copied non-blocking; device-side
                resize and normalisation, bf16 autocast on CUDA; outputs stay on the device until one transfer at
                the end; also returns the CLS tokens). The timed pass includes that pin_memory copy.
  usual-fp32    torchvision-style Dataset of PIL images + open_clip's eval transform (from
                `open_clip.create_model_and_transforms`) + DataLoader(num_workers) + `model.encode_image` in fp32
  usual-amp     the same under bf16 autocast
  model-only    `model.encode_image` under bf16 autocast on an already-preprocessed batch on the device: the
                ceiling of any input pipeline (comparable with timm's inference tables, SAE_ANCHORS 5)
Random weights (`load_clip(name, None)`) and random uint8 images: same FLOPs as the real thing, no downloads.
FLOPs per image come from the architecture (`common.vit_image_flops`; equals open_clip's profile, 8.82 / 35.13
GFLOPs for B/32 / B/16 at 224 px). "%bf16" is achieved FLOP/s over the bf16 matmul rate measured in this run.
"""
from __future__ import annotations

import os

import common  # first: puts the repository root on sys.path
import numpy as np
import open_clip
import torch
from PIL import Image

from vs2mini.clip import load_clip
from vs2mini.data import ImageDataset
from vs2mini.features import encode_images, extract_features
from vs2mini.preprocess import preprocess_batch, preprocess_config


class PILImages(torch.utils.data.Dataset):
    """Like torchvision's CIFAR100: a (N, H, W, 3) uint8 array, PIL image + transform per item."""

    def __init__(self, data: np.ndarray, labels: np.ndarray, transform):
        self.data, self.labels, self.transform = data, labels, transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.data[i])), int(self.labels[i])


def random_dataset(n: int, size: int, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 100, (n,), generator=g)
    return ImageDataset("random", "test", [f"class {i}" for i in range(100)], labels, images=images,
                        image_size=size, synthetic=True)


def usual_extract(model, ds: PILImages, device, batch: int, workers: int, amp: bool) -> torch.Tensor:
    """What a typical open_clip user writes."""
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers)
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for x, _ in loader:
            out.append(model.encode_image(x.to(device)).float().cpu())
    return torch.cat(out)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--models", default=None, help="comma-separated open_clip names "
                   "(default ViT-B-32-quickgelu,ViT-B-16-quickgelu; --quick: vs2mini-tiny)")
    p.add_argument("--sizes", default="32,224", help="input image sides (32 = CIFAR-sized)")
    p.add_argument("--n-small", type=int, default=None, help="images at sizes < 100 px (default 20000; quick 64)")
    p.add_argument("--n-large", type=int, default=None, help="images at sizes >= 100 px (default 8192; quick 16)")
    p.add_argument("--batch", type=int, default=256, help="images per batch, both paths (vs2mini default 256)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers, usual path (default min(8, CPUs))")
    p.add_argument("--repeats", type=int, default=None, help="timed passes, vs2mini path (default 3; quick 1)")
    a = p.parse_args()
    dev = common.get_device(a.device)
    q = a.quick
    models = (a.models or ("vs2mini-tiny" if q else "ViT-B-32-quickgelu,ViT-B-16-quickgelu")).split(",")
    n_small, n_large = a.n_small or (64 if q else 20000), a.n_large or (16 if q else 8192)
    workers = a.workers if a.workers is not None else min(8, os.cpu_count() or 1)
    repeats = a.repeats or (1 if q else 3)
    info, roof = common.device_info(dev), common.rooflines(dev, q)
    print(common.header("bench_features", info, roof, q))
    rows = []
    for name in models:
        clip = load_clip(name, None, dev)
        flops = common.vit_image_flops(clip.model.visual)
        # The usual user's model and transform; same weights as `clip` so the two paths can be compared.
        usual, _, transform = open_clip.create_model_and_transforms(name, pretrained=None, device=dev)
        usual.load_state_dict(clip.model.state_dict())
        usual.eval().requires_grad_(False)
        for size in map(int, a.sizes.split(",")):
            n = n_small if size < 100 else n_large
            ds = random_dataset(n, size)
            pil = PILImages(ds.images.permute(0, 2, 3, 1).contiguous().numpy(), ds.labels.numpy(), transform)
            base = dict(model=name, size=size, n=n, gflop_img=flops / 1e9)

            def record(path, t, **extra):
                ips = n / t["median_s"] if "median_s" in t else t["ips"]
                rows.append({**base, "path": path, "img_s": ips, "tflop_s": ips * flops / 1e12,
                             "pct_bf16": 100 * ips * flops / 1e12 / roof["bf16_tflops"], **extra})
                return ips

            # vs2mini: warm up on two batches, then time whole passes. bf16 autocast on CUDA (`amp=True`; the package
            # default is fp32 features, as published, for the `full` profile: Profile.feature_amp).
            amp_v = dev.type == "cuda"
            extract_features(clip, random_dataset(min(n, 2 * a.batch), size), a.batch, progress=False, amp=amp_v)
            t = common.time_fn(lambda: extract_features(clip, ds, a.batch, progress=False, amp=amp_v), dev, 0, repeats)
            ips_v = record("vs2mini", t)
            # Ceiling: model only, bf16 autocast, input already preprocessed on the device.
            x = preprocess_batch(ds.images[:a.batch].to(dev), preprocess_config(clip.model))
            amp = dev.type == "cuda"

            def model_only():
                with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    clip.model.encode_image(x)
            tm = common.time_fn(model_only, dev, 2, 10)
            record("model-only", {"ips": len(x) / tm["median_s"]})
            # Usual path, fp32 and bf16 autocast: one warm-up batch through the model, then one timed pass each.
            emb_u = {}
            for label, amp_u in (("usual-fp32", False), ("usual-amp", True)):
                usual_extract(usual, torch.utils.data.Subset(pil, range(min(n, a.batch))), dev, a.batch, 0, amp_u)
                box, w = {}, workers
                try:
                    tu = common.time_fn(lambda: box.update(e=usual_extract(usual, pil, dev, a.batch, w, amp_u)),
                                        dev, 0, 1)
                except RuntimeError as e:   # e.g. a small /dev/shm kills the workers: say so, run in-process
                    print(f"{label}: DataLoader with {w} workers failed ({str(e)[:120]}); retrying with 0")
                    w = 0
                    tu = common.time_fn(lambda: box.update(e=usual_extract(usual, pil, dev, a.batch, w, amp_u)),
                                        dev, 0, 1)
                emb_u[label] = box["e"]
                record(label, tu, workers=w)
            # Agreement of the two pipelines on the first images (same weights): cosine of image embeddings.
            _, emb_v = encode_images(clip, ds.images[:64], amp_v)
            cos = torch.nn.functional.cosine_similarity(emb_v.cpu(), emb_u["usual-fp32"][:64], dim=-1)
            for r in rows[-4:]:
                r["speedup_vs_fp32"] = ips_v / next(x["img_s"] for x in rows[-4:] if x["path"] == "usual-fp32")
                r["speedup_vs_amp"] = ips_v / next(x["img_s"] for x in rows[-4:] if x["path"] == "usual-amp")
            rows[-4]["min_cos_vs_usual"] = cos.min().item()
            del ds, pil
    cols = ["model", "size", "n", "path", "img_s", "gflop_img", "tflop_s", "pct_bf16", "speedup_vs_fp32",
            "speedup_vs_amp", "workers", "min_cos_vs_usual"]
    print(common.table(rows, cols, {"img_s": ".0f", "pct_bf16": ".1f", "speedup_vs_fp32": ".2f",
                                    "speedup_vs_amp": ".2f", "min_cos_vs_usual": ".4f", "gflop_img": ".3g"}))
    print("speedup_* = vs2mini img/s over that usual path (same on every row of a block); targets: >= 5x on "
          "CIFAR-sized input, vs2mini >= 40% of the bf16 matmul rate.")
    common.write_json(a.json, "bench_features", a, info, roof, rows)


if __name__ == "__main__":
    main()
