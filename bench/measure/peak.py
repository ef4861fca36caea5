"""The machine's peak: what its math libraries attain (measured) and what its cores could (theoretical).

``measure_kernels`` runs in a child process with the PyTorch backend's settings, so at
the thread count the timed runs use; each kernel is named with the library behind it:

* ``torch.mm`` fp32, n up to 4096: MKL's sgemm (torch's CPU BLAS);
* ``torch.mm`` bf16: oneDNN's bf16 matmul (torch routes CPU bf16 GEMM there);
* ``torch.mm`` fp16: torch's CPU fp16 matmul (oneDNN where the CPU has fp16 instructions);
* ``torch.nn.functional.conv2d`` fp32, a ResNet 3x3 layer (256 ch, 28^2, batch up to 16): oneDNN;
* ``numpy.matmul`` fp32, n up to 2048: the BLAS NumPy links (OpenBLAS in the wheels), with
  the kernel OpenBLAS picked for this CPU (threadpoolctl).

Each kernel runs for about ``seconds``; its rate is the best of those runs (a peak) with
the median beside it. The theoretical peak is cores x clock x FLOP per cycle, with the
FLOP per cycle read from the CPU flags under a stated assumption (two FMA pipes).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

# FLOP per cycle per core, from the widest instructions the flags offer, assuming two FMA pipes.
# AVX-512 differs by vendor: Intel server cores (Xeon Gold/Platinum) have two 512-bit FMA units
# (64 fp32 FLOP per cycle; Silver/Bronze one: half), AMD Zen 4 runs AVX-512 as 2 x 256-bit (32).
FP32_PER_CYCLE = (("avx512f", "GenuineIntel", 64, "2 FMA units x 16 fp32 lanes (AVX-512) x 2 (Intel server "
                   "cores; Xeon Silver/Bronze have one 512-bit FMA unit: half)"),
                  ("avx512f", "", 32, "2 FMA pipes x 8 fp32 lanes x 2 (AMD Zen 4 runs AVX-512 as 2 x 256-bit)"),
                  ("fma", "", 32, "2 FMA pipes x 8 fp32 lanes (AVX2) x 2"),
                  ("avx", "", 16, "AVX without FMA: 8 lanes, add + multiply"))
BF16_PER_CYCLE = (("amx_bf16", "", 1024, "AMX tiles (Intel): 1024 bf16 FLOP per cycle"),
                  ("avx512_bf16", "", 64, "VDPBF16PS: 2 bf16 products per fp32 lane, 2 pipes x 16 lanes x 2"))
FP16_PER_CYCLE = (("amx_fp16", "", 1024, "AMX-FP16 tiles (Intel): 1024 fp16 FLOP per cycle"),
                  ("avx512_fp16", "", 128, "AVX512-FP16 FMA: 2 pipes x 32 fp16 lanes x 2"))
PER_CYCLE = {"fp32": FP32_PER_CYCLE, "bf16": BF16_PER_CYCLE, "fp16": FP16_PER_CYCLE}


def clock_mhz() -> float | None:
    """The cores' nominal clock: cpufreq's maximum where exposed, else /proc/cpuinfo's current MHz."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def theoretical(flags: set[str], cores: int, mhz: float | None, vendor: str = "") -> dict:
    """GFLOP/s the cores could reach in each precision, with the assumption behind each;
    ``vendor``: /proc/cpuinfo's ``vendor_id`` (AVX-512's width per cycle depends on it)."""
    out = {"cores": cores, "clock_mhz": mhz, "vendor": vendor or None,
           "clock_source": "cpufreq max" if Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").exists()
           else "/proc/cpuinfo cpu MHz (current; a VM may not expose boost)"}
    for precision, table in PER_CYCLE.items():
        hit = next(((flag, n, why) for flag, who, n, why in table if flag in flags and who in (vendor, "")), None)
        if hit is None or mhz is None:
            out[precision] = {"gflops": None, "why": "no clock reading" if mhz is None else
                              f"no {precision} arithmetic instructions in the CPU flags: {precision} runs "
                              "through fp32 conversion, no faster than fp32"}
        else:
            out[precision] = {"gflops": round(cores * mhz / 1e3 * hit[1], 1), "flop_per_cycle": hit[1],
                              "flag": hit[0], "assumption": hit[2]}
    return out


def _rate(make, sizes, seconds: float) -> dict:
    """Time ``make(n) -> (run, flops)`` at the largest of ``sizes`` whose one run fits in a tenth of
    ``seconds`` (a CPU without native bf16 emulates it at a few GFLOP/s: a 4096^3 GEMM would take
    minutes), repeated for about ``seconds``; the best and the median rate."""
    for n in sizes:
        run, flops = make(n)
        t0 = time.perf_counter()
        run()  # also the warm-up: allocation, the library's kernel choice
        if time.perf_counter() - t0 > seconds / 10:
            break
    rates, spent = [], 0.0
    while spent < seconds or len(rates) < 3:
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        spent += dt
        rates.append(flops / dt / 1e9)
    rates.sort()
    return {"gflops": round(rates[-1], 1), "median_gflops": round(rates[len(rates) // 2], 1), "runs": len(rates),
            "size": n}


GEMM_SIZES = (256, 512, 1024, 2048, 4096)
# what measure_kernels runs: part of the cache key, so a cached peak without a newer kernel is measured again
PEAK_KERNELS = ("torch.mm fp32", "torch.mm bf16", "torch.mm fp16", "torch conv2d fp32", "numpy.matmul fp32")


def measure_kernels(seconds: float = 1.0) -> dict:
    """Run each kernel this process can (torch and NumPy); {"kernels": {...}, "threads": n, ...}."""
    import numpy as np
    kernels: dict[str, dict] = {}
    threads = None
    try:
        import torch
        import torch.nn.functional as F
        threads = torch.get_num_threads()
        config = torch.__config__.show()
        mkl = "MKL" if "USE_MKL=ON" in config or "Math Kernel Library" in config else "the linked BLAS"
        onednn = "oneDNN" + (f" {torch.backends.mkldnn.version()}" if hasattr(torch.backends.mkldnn, "version") else "")

        def gemm(dtype):
            def make(n):
                a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
                return (lambda: torch.mm(a, b)), 2 * n ** 3
            return make

        kernels["torch.mm fp32"] = {"library": f"{mkl} sgemm (torch {torch.__version__})", "precision": "fp32",
                                    "shape": "n x n x n"} | _rate(gemm(torch.float32), GEMM_SIZES, seconds)
        kernels["torch.mm bf16"] = {"library": f"{onednn} bf16 matmul (torch {torch.__version__})",
                                    "precision": "bf16", "shape": "n x n x n"} | _rate(gemm(torch.bfloat16),
                                                                                      GEMM_SIZES, seconds)
        kernels["torch.mm fp16"] = {"library": f"torch's CPU fp16 matmul (oneDNN where the CPU has fp16 "
                                               f"instructions; torch {torch.__version__})",
                                    "precision": "fp16", "shape": "n x n x n"} | _rate(gemm(torch.float16),
                                                                                      GEMM_SIZES, seconds)

        def conv(batch):
            x, w = torch.randn(batch, 256, 28, 28), torch.randn(256, 256, 3, 3)
            return (lambda: F.conv2d(x, w, padding=1)), 2 * batch * 256 * 28 * 28 * 256 * 9
        with torch.no_grad():
            kernels["torch conv2d fp32"] = {"library": f"{onednn} convolution (torch.nn.functional.conv2d)",
                                            "precision": "fp32", "shape": "n x 256 x 28 x 28, 256 3x3"} | _rate(
                conv, (2, 4, 8, 16), seconds)
    except ImportError:
        pass
    blas = "NumPy's BLAS"
    try:
        from threadpoolctl import threadpool_info
        info = next((i for i in threadpool_info() if i.get("user_api") == "blas"), None)
        if info:
            blas = f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')} kernel)"
            threads = threads or info.get("num_threads")
    except ImportError:
        pass

    def np_gemm(n):
        a, b = np.random.default_rng(0).normal(size=(2, n, n)).astype(np.float32)
        return (lambda: a @ b), 2 * n ** 3
    kernels["numpy.matmul fp32"] = {"library": f"{blas} sgemm (numpy {np.__version__})", "precision": "fp32",
                                    "shape": "n x n x n"} | _rate(np_gemm, GEMM_SIZES[:-1], seconds)
    return {"kernels": kernels, "threads": threads or os.cpu_count()}


def best_measured(peak: dict | None, precision: str) -> dict | None:
    """The fastest measured kernel of ``precision`` (name, library, GFLOP/s), or None."""
    if not peak or not peak.get("kernels"):
        return None
    rows = [(k, v) for k, v in peak["kernels"].items() if v.get("precision") == precision and v.get("gflops")]
    if not rows:
        return None
    name, row = max(rows, key=lambda kv: kv[1]["gflops"])
    return {"kernel": name, "library": row["library"], "gflops": row["gflops"]}
