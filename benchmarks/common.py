"""Shared helpers for the vs2mini benchmarks: device info, timing, measured matmul / copy rates, tables, JSON.

Every script imports this module first; it puts the repository root on sys.path so `import vs2mini` works from a
plain checkout (`python benchmarks/bench_sae.py --quick`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes: --quick, --cpu, --device, --json."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke check in < 60 s, not a measurement")
    p.add_argument("--cpu", action="store_true", help="laptop sizes on the CPU: the side-by-side ratios of "
                   "benchmarks/RESULTS.md in a few minutes (implies --device cpu)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON to PATH")
    return p


def get_device(name: str | None, cpu_mode: bool = False) -> torch.device:
    if cpu_mode:
        return torch.device("cpu")
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def device_info(device: torch.device) -> dict:
    """What ran the benchmark: GPU name, library versions, CPU count."""
    try:
        import open_clip
        oc = open_clip.__version__
    except ImportError:
        oc = None
    info = {"device": str(device), "torch": torch.__version__, "open_clip": oc,
            "cuda": torch.version.cuda, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "host_cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
            "load_avg_1min": os.getloadavg()[0]}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=torch.cuda.get_device_name(device), gpu_mem_gb=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", sm_count=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    else:
        info["gpu"] = None
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, warmup: int = 1, repeats: int = 5) -> dict:
    """Median / min / max seconds of `fn()` over `repeats` calls after `warmup` calls.

    CUDA: synchronize, record an event, run, record an event, synchronize; the event pair gives the elapsed time
    (for host-bound work it still equals wall time, since the end event waits for everything queued before it).
    CPU: time.perf_counter.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def stats(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": len(times)}


def time_side_by_side(fns: dict, device: torch.device, warmup: int = 1, repeats: int = 5) -> dict:
    """Time several callables interleaved (A B C A B C ...) so that a shared machine's drift hits all alike.
    Returns {name: stats} plus, for every name after the first, "ratio:<name>": the stats of the per-round ratio
    time(name) / time(first) (so a ratio > 1 means the first one is faster)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    out = {name: stats(t) for name, t in times.items()}
    first = next(iter(fns))
    for name in list(fns)[1:]:
        out[f"ratio:{name}"] = stats([b / a for a, b in zip(times[first], times[name])])
    return out


def ms(st: dict) -> str:
    """'median [min-max]' in ms of a stats dict."""
    return f"{1e3 * st['median_s']:.3g} [{1e3 * st['min_s']:.3g}-{1e3 * st['max_s']:.3g}]"


def ratio(st: dict) -> str:
    """'median [min-max]' of a ratio stats dict."""
    return f"{st['median_s']:.2f} [{st['min_s']:.2f}-{st['max_s']:.2f}]"


def _proc_status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def peak_rss_mb(fn) -> tuple[float | None, object]:
    """(peak resident memory added while fn() ran, in MB; fn's result). Linux: resets the high-water mark
    (/proc/self/clear_refs 5), then reads VmHWM - VmRSS before. None where /proc is not available."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _proc_status_mb("VmRSS")
    except OSError:
        return None, fn()
    out = fn()
    return _proc_status_mb("VmHWM") - before, out


class Checks:
    """Correctness thresholds: `check(name, ok, detail)` records each; `exit_code()` is 1 if any failed."""

    def __init__(self):
        self.rows = []

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.rows.append({"check": name, "ok": bool(ok), "detail": detail})
        return ok

    def report(self) -> int:
        print("\ncorrectness checks (the script exits non-zero if one fails):")
        for r in self.rows:
            print(f"  [{'PASS' if r['ok'] else 'FAIL'}] {r['check']}: {r['detail']}")
        failed = [r["check"] for r in self.rows if not r["ok"]]
        if failed:
            print(f"FAILED: {', '.join(failed)}")
        return 1 if failed else 0


class Stopwatch:
    """Wall time of a block with device synchronisation at both ends: `with Stopwatch(dev) as sw: ...; sw.s`."""

    def __init__(self, device: torch.device):
        self.device, self.s = device, None

    def __enter__(self):
        sync(self.device)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.s = time.perf_counter() - self.t0


def matmul_tflops(dtype: torch.dtype = torch.bfloat16, n: int = 8192, device: torch.device | None = None,
                  repeats: int = 10) -> float:
    """Measured dense matmul rate (TFLOP/s) of an n x n x n `a @ b` in `dtype` on `device`, in this run.
    This is the roofline the benchmarks quote percentages of (not the datasheet peak)."""
    device = device or get_device(None)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = time_fn(lambda: a @ b, device, warmup=2, repeats=repeats)["median_s"]
    return 2 * n**3 / t / 1e12


def copy_gbps(device: torch.device | None = None, mbytes: int = 1024, repeats: int = 10) -> float:
    """Measured device memory bandwidth (GB/s) of a large tensor copy (read + write counted)."""
    device = device or get_device(None)
    a = torch.empty(mbytes * 2**20, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    t = time_fn(lambda: b.copy_(a), device, warmup=2, repeats=repeats)["median_s"]
    return 2 * a.numel() / t / 1e9


def rooflines(device: torch.device, quick: bool) -> dict:
    """bf16 / fp32 matmul TFLOP/s and copy GB/s measured now (small sizes with --quick)."""
    n = 512 if device.type == "cpu" else 1024 if quick else 8192     # bf16 matmul without native bf16 is slow
    return {"bf16_tflops": matmul_tflops(torch.bfloat16, n, device), "fp32_tflops": matmul_tflops(torch.float32, n, device),
            "copy_gbps": copy_gbps(device, 64 if quick else 2048), "matmul_n": n}


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def table(rows: list[dict], cols: list[str], specs: dict | None = None) -> str:
    """A plain-text table of `rows` (dicts) over `cols`."""
    specs = specs or {}
    cells = [[fmt(r.get(c), specs.get(c, ".3g")) for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w[i]) if i else x.ljust(w[i]) for i, x in enumerate(xs))  # noqa: E731
    return "\n".join([line(cols), line(["-" * x for x in w]), *map(line, cells)])


def header(name: str, info: dict, roof: dict | None, quick: bool) -> str:
    lines = [f"== {name}", f"device: {info.get('gpu') or info['host_cpu'] + ' CPU'} ({info['device']}), "
             f"torch {info['torch']}, CUDA {info['cuda']}, open_clip {info['open_clip']}, python {info['python']}, "
             f"{info['cpu_count']} CPUs, {info['torch_threads']} torch threads, load average "
             f"{info['load_avg_1min']:.1f} at the start"]
    if roof:
        lines.append(f"measured now: bf16 matmul {roof['bf16_tflops']:.3g} TFLOP/s, fp32 matmul "
                     f"{roof['fp32_tflops']:.3g} TFLOP/s (n={roof['matmul_n']}), copy {roof['copy_gbps']:.0f} GB/s")
    if quick:
        lines.append("*** --quick: tiny sizes, a smoke check of the script, NOT a performance claim ***")
    lines.append("figures: median [min-max] over the repeats; ratios are taken round by round, paths interleaved")
    return "\n".join(lines)


def write_json(path: str | None, name: str, args, info: dict, roof: dict | None, results) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"benchmark": name, "args": vars(args), "device_info": info,
                                          "rooflines": roof, "results": results}, indent=2, default=str))
        print(f"wrote {path}")


def vit_image_flops(visual) -> float:
    """Forward FLOPs (2 x MACs) of one image through an open_clip VisionTransformer, from its architecture:
    per layer 12 w^2 T (qkv, out-proj, 4x MLP) + 2 T^2 w (QK^T, AV); patch embedding (T-1) 3 p^2 w; projection w D.
    Matches open_clip's profile (4.41 GMACs B/32, 17.58 GMACs B/16); LayerNorm, softmax and GELU are left out."""
    w = visual.conv1.out_channels
    p = visual.conv1.kernel_size[0]
    T = visual.positional_embedding.shape[0]
    L = len(visual.transformer.resblocks)
    D = visual.proj.shape[1]
    macs = L * (12 * w * w * T + 2 * T * T * w) + (T - 1) * 3 * p * p * w + w * D
    return 2.0 * macs


# open_clip docs/model_profile.csv, image tower at 224 px; used as a cross-check.
OPEN_CLIP_GFLOPS = {"ViT-B-32-quickgelu": 8.82, "ViT-B-16-quickgelu": 35.13}
