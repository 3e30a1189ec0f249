"""A whole `reproduce --profile full`-shaped run, timed per stage, on random weights and random CIFAR-sized images.

Builds `vs2mini.pipeline.Setup` by hand: `load_clip(model, None, device)`, in-memory random uint8 datasets of
CIFAR-100's sizes (50k train / 10k test, 32 px, 100 classes), features from `extract_features` (no disk cache),
a zero-shot head from `zeroshot_head`, then `vs2mini.tables.main.run_reproduce(run=Run.of(setup))` with
the `full` profile (30 epochs, batch 4096, expansion 4, k from `profile.k_for(model)`: 64 for B/32, 256 for
B/16 (paper v3 App. C), unless --k is given; 50 neighbours; the SAE trains under bf16 autocast (`SAESettings.bf16`),
features run in fp32 (`DataSettings.feature_amp = False`)). `--repeats` whole runs give median [min-max] per stage.
Stages are timed by wrapping the functions run_reproduce calls (restored afterwards), with a device sync at each
boundary: features, head, eval (cls_to_logits for each row), SAE and PASS SAE (both through `Setup.train_sae`;
the call with labels is PASS), train FVU for the row notes (`TopKSAE.fvu`), REC baselines, VS2 (VS2 and PASS
rows), gate, VS2++ (k-NN, pseudo labels, `bank_directions` once, both `vs2pp_from_bank` calls); "other" is the rest.
The gate's generalized SAE is trained before `run_reproduce` (stage "gate SAE"), as the `full` profile trains it: on
the union of three train splits, CIFAR-100's tokens plus random tokens of CUB-200's and Tiny-ImageNet's train sizes
(no dataset files are needed). peak_gb: the CUDA allocator's peak within each stage; `--mem-cap-gb 15` caps the
allocator as a 16 GB Colab T4 would, and a check fails if any stage needs more.
Floors, at the measured matmul rate of the precision each stage runs in: features = images x FLOPs/img (fp32
unless the profile's feature_amp); SAE = epochs x N x 2*d*n (the encoder GEMM; bf16 when the profile's bf16).
Accuracies are meaningless (random weights).

--cpu (and --threads-rule): the thread rule of the CLI measured: the offline `python -m vs2mini reproduce` in
fresh processes with --threads 1 and --threads <all cores>, interleaved, wall time per run and the ratio.
"""
from __future__ import annotations

import contextlib
import functools
import os
import statistics
import subprocess
import sys
import time

import common
import torch

from vs2mini.tables import main as reproduce
from vs2mini.tables.run import Run, general_gate_data
from vs2mini.method import retrieval
from vs2mini.method import steer
from vs2mini.clip.models import load_clip, zeroshot_head
from vs2mini.data.images import ImageDataset
from vs2mini.clip.features import Features, extract_features
from vs2mini.pipeline import Setup
from vs2mini.config import get_profile
from vs2mini.method.sae import TopKSAE


class StageTimer:
    """Wall time and GPU allocator peak per stage label; nested timed calls count only in the outermost stage."""

    def __init__(self, device):
        self.device, self.t, self.mem, self.depth, self.saved = device, {}, {}, 0, []

    @contextlib.contextmanager
    def stage(self, label):
        if self.depth:
            yield
            return
        self.depth += 1
        common.sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            common.sync(self.device)
            self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0
            if self.device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(self.device) / 2**30
                self.mem[label] = max(self.mem.get(label, 0.0), peak)
            self.depth -= 1

    def wrap(self, label, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.stage(label):
                return fn(*args, **kwargs)
        return timed

    def patch(self, obj, name, label):
        self.saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, self.wrap(label, getattr(obj, name)))

    def restore(self):
        for obj, name, fn in reversed(self.saved):
            setattr(obj, name, fn)
        self.saved.clear()


# Train-split sizes of the gate's other datasets (CUB-200-2011: 5,994; Tiny-ImageNet: 100,000); the full profile's
# generalized SAE trains on the union of all three train splits (v3 §4.3). Their tokens are random here: the SAE's
# cost does not depend on the values, and their feature extraction is not timed (in a real run it is cached).
GATE_TRAIN_SIZES = {"cub200": 5994, "tinyimagenet": 100000}


def random_tokens(like: Features, n: int, seed: int) -> Features:
    """n random CLS tokens with `like`'s per-dimension mean and std (labels and embeddings unused by the gate)."""
    g = torch.Generator().manual_seed(seed)
    x = like.cls.cpu()
    cls = torch.randn(n, x.shape[1], generator=g) * x.std(0) + x.mean(0)
    return Features(cls, torch.zeros(n, 1), torch.zeros(n, dtype=torch.long))


def random_split(split, n, classnames, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, len(classnames), (n,), generator=g)
    return ImageDataset("cifar100", split, classnames, labels, images=images, image_size=size, synthetic=True)


def run_one(model, a, dev, roof):
    q = a.quick
    over = dict(model=model, pretrained=None, k=a.k, n_train=a.n_train, n_test=a.n_test)   # k=None: by backbone
    if q:
        over.update(epochs=3, batch_size=256, image_batch=64, real=False)
    p = get_profile("full", **over)
    amp_f = p.data.feature_amp
    k = p.k_for(model)
    names = [f"class {i}" for i in range(100)]
    train_set = random_split("train", p.data.n_train, names, seed=0)
    test_set = random_split("test", p.data.n_test, names, seed=1)
    st = StageTimer(dev)
    t_all = time.perf_counter()
    with common.Stopwatch(dev) as sw:
        clip = load_clip(model, None, dev)
    load_s = sw.s
    with st.stage("features warm-up (2 batches)"):   # kernel selection / allocator warm-up, kept out of "features"
        extract_features(clip, random_split("test", 2 * p.data.image_batch, names), p.data.image_batch, progress=False,
                         amp=amp_f)
    with st.stage("features"):
        train = extract_features(clip, train_set, p.data.image_batch, progress=False, amp=amp_f)
        test = extract_features(clip, test_set, p.data.image_batch, progress=False, amp=amp_f)
    with st.stage("head"):
        head = zeroshot_head(clip, names, p.data.templates)
    setup = Setup(p, clip, "cifar100", names, train, test, head, train_set, test_set)
    sizes = {n: (max(1, v // 50) if q else v) for n, v in GATE_TRAIN_SIZES.items()}
    other = {n: random_tokens(train, sizes[n], i) for i, n in enumerate(sizes)}
    with st.stage("gate SAE (union of 3 train splits)"):
        gate, _ = general_gate_data(setup, train_features=lambda n: train if n == "cifar100" else other[n])
    sae_timed, pass_timed = st.wrap("SAE", setup.train_sae), st.wrap("PASS SAE", setup.train_sae)
    setup.train_sae = lambda labels=None, **kw: (pass_timed if labels is not None else sae_timed)(labels=labels, **kw)
    setup.accuracy = st.wrap("eval (cls_to_logits)", setup.accuracy)
    for obj, name, label in ((steer, "sae_reconstruction", "REC baselines"), (steer, "vs2", "VS2 (VS2 + PASS rows)"),
                             (steer, "per_sample_fvu", "gate"), (steer, "fvu_threshold", "gate"),
                             (steer, "gate", "gate"), (retrieval, "knn", "VS2++"),
                             (retrieval, "positive_mask", "VS2++"),
                             (steer, "bank_directions", "VS2++"), (steer, "vs2pp_from_bank", "VS2++"),
                             (TopKSAE, "fvu", "train FVU (row notes)")):
        st.patch(obj, name, label)
    before = set(st.t)
    try:
        with common.Stopwatch(dev) as sw:
            res = reproduce.run_reproduce(run=Run.of(setup, gate=gate))
    finally:
        st.restore()
    st.t["run_reproduce other"] = sw.s - sum(v for key, v in st.t.items() if key not in before)
    total = time.perf_counter() - t_all
    n_img = p.data.n_train + p.data.n_test
    d = train.cls.shape[1]
    n_lat = p.sae.expansion * d
    rate = lambda bf16: roof["bf16_tflops" if bf16 else "fp32_tflops"]  # noqa: E731
    floors = {"features": n_img * common.vit_image_flops(clip.model.visual) / 1e12 / rate(amp_f),
              "SAE": p.train.epochs * p.data.n_train * 2 * d * n_lat / 1e12 / rate(p.sae.bf16)}
    floors["PASS SAE"] = floors["SAE"]
    n_gate = p.data.n_train + sum(sizes.values())
    floors["gate SAE (union of 3 train splits)"] = p.train.epochs * n_gate * 2 * d * n_lat / 1e12 / rate(p.sae.bf16)
    rows = [dict(model=model, stage=s, seconds=v, pct_total=100 * v / total, floor_s=floors.get(s),
                 pct_floor=100 * floors[s] / v if s in floors and v > 0 else None, peak_gb=st.mem.get(s))
            for s, v in st.t.items()]
    rows.append(dict(model=model, stage="model load (load_clip)", seconds=load_s, pct_total=100 * load_s / total))
    rows.append(dict(model=model, stage="TOTAL wall", seconds=total, pct_total=100.0))
    meta = dict(model=model, k=k, n_latents=n_lat, epochs=p.train.epochs, batch_size=p.train.batch_size, sae_bf16=p.sae.bf16,
                feature_amp=amp_f, n_train=p.data.n_train,
                n_test=p.data.n_test, image_batch=p.data.image_batch, imgs_per_s_features=n_img / st.t["features"],
                gate_train_tokens=n_gate, peak_gb=max(st.mem.values(), default=None),
                rows_computed=len(res.rows))
    return rows, meta, res


def thread_rule(profile: str, threads: list[int], rounds: int) -> list[dict]:
    """Wall seconds of `python -m vs2mini reproduce --profile <profile> --quiet --threads N` in fresh processes,
    the thread counts interleaved round by round (one warm-up run first fills the feature cache)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(common.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "vs2mini", "reproduce", "--profile", profile, "--quiet", "--threads"]
    subprocess.run(cmd + [str(threads[0])], env=env, check=True, capture_output=True)
    times = {t: [] for t in threads}
    for _ in range(rounds):
        for t in threads:
            t0 = time.perf_counter()
            subprocess.run(cmd + [str(t)], env=env, check=True, capture_output=True)
            times[t].append(time.perf_counter() - t0)
    rows = []
    for t in threads:
        ratios = [b / a for a, b in zip(times[threads[0]], times[t])]
        st = common.stats(times[t])
        rows.append(dict(profile=profile, threads=t, wall_s=f"{st['median_s']:.2f} [{st['min_s']:.2f}-{st['max_s']:.2f}]",
                         vs_first=f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"))
    return rows


def main():
    pr = common.parser(__doc__.splitlines()[0])
    pr.add_argument("--models", default=None, help="comma-separated (default ViT-B-32-quickgelu; quick vs2mini-tiny)")
    pr.add_argument("--n-train", type=int, default=None, help="default 50000 (quick 1000)")
    pr.add_argument("--n-test", type=int, default=None, help="default 10000 (quick 300)")
    pr.add_argument("--k", type=int, default=None, help="SAE k (default: profile.k_for(model), 64 for B/32, "
                    "256 for B/16)")
    pr.add_argument("--repeats", type=int, default=None, help="whole runs (default 3; quick 1)")
    pr.add_argument("--threads-rule", action="store_true", help="also time the offline CLI run at 1 thread vs all "
                    "cores (always on with --cpu)")
    pr.add_argument("--offline-profile", default=None, help="profile of the thread-rule run (default: toy)")
    pr.add_argument("--mem-cap-gb", type=float, default=None, help="cap the CUDA allocator to this many GiB "
                    "(torch.cuda.set_per_process_memory_fraction), e.g. 15 for a 16 GB Colab T4")
    pr.add_argument("--show-table", action="store_true", help="also print the (meaningless) accuracy table")
    a = pr.parse_args()
    dev, q = common.get_device(a.device, a.cpu), a.quick
    a.n_train, a.n_test = a.n_train or (1000 if q else 50000), a.n_test or (300 if q else 10000)
    models = (a.models or ("vs2mini-tiny" if q else "ViT-B-32-quickgelu")).split(",")
    R = a.repeats or (1 if q else 3)
    info, roof = common.device_info(dev), common.rooflines(dev, q or a.cpu)
    if a.mem_cap_gb and dev.type == "cuda":     # after the rooflines: their 8192^2 matrices are not the pipeline's
        total = torch.cuda.get_device_properties(dev).total_memory
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, a.mem_cap_gb * 2**30 / total), dev)
        info["mem_cap_gb"] = a.mem_cap_gb
    print(common.header("bench_reproduce", info, roof, q))
    checks = common.Checks()
    rows, metas, thread_rows = [], [], []
    if a.cpu or a.threads_rule:
        prof = a.offline_profile or "toy"
        thread_rows = thread_rule(prof, [1, os.cpu_count() or 1], R)
        print(f"thread rule: `python -m vs2mini reproduce --profile {prof} --quiet --threads N`, fresh processes, "
              "interleaved; wall s median [min-max]; vs_first = time / time at 1 thread per round:")
        print(common.table(thread_rows, list(thread_rows[0])))
    if not a.cpu:                        # the full-shaped run: minutes on a GPU, hours on a CPU
        for model in models:
            runs = [run_one(model, a, dev, roof) for _ in range(R)]
            meta, res = runs[-1][1], runs[-1][2]
            metas.append(meta)
            print(f"{model}: " + ", ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in meta.items()))
            if a.show_table:
                print(res.table())
            tops = [r.ours.get("top-1") for r in res.rows]
            checks.check(f"every row computed {model}", len(tops) > 0 and all(t is not None and t == t for t in tops),
                         f"{len(tops)} rows, each with a top-1")
            if a.mem_cap_gb and dev.type == "cuda":
                checks.check(f"fits {a.mem_cap_gb:g} GiB {model}", meta["peak_gb"] <= a.mem_cap_gb,
                             f"allocator peak {meta['peak_gb']:.2f} GiB over all stages")
            for i, r in enumerate(runs[0][0]):
                secs = [run[0][i]["seconds"] for run in runs]
                rows.append({**r, "seconds": statistics.median(secs), "range": f"{min(secs):.2f}-{max(secs):.2f}",
                             "pct_floor": 100 * r["floor_s"] / statistics.median(secs) if r.get("floor_s") else None})
        print(common.table(rows, ["model", "stage", "seconds", "range", "pct_total", "floor_s", "pct_floor", "peak_gb"],
                           {"seconds": ".2f", "pct_total": ".1f", "floor_s": ".3f", "pct_floor": ".1f",
                            "peak_gb": ".2f"}))
        print(f"seconds: median of {R} whole runs [range]; pct_floor = FLOP floor / measured (features: matmul rate of "
              "the feature precision; SAE: of the SAE precision; encoder GEMM only).")
    rc = checks.report()
    common.write_json(a.json, "bench_reproduce", a, info, roof, {"stages": rows, "runs": metas,
                                                                 "thread_rule": thread_rows, "checks": checks.rows})
    sys.exit(rc)


if __name__ == "__main__":
    main()
