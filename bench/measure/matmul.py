"""The calibration figure: a matmul benchmark measured in the same process as the run, on the
run's device and in its compute dtype.

The harness stores `measure_calibration(device=..., dtype=...)` in every record as
`env.calibration`; the gate divides throughput by `env.calibration.matmul_gflops` on each side,
and only between calibrations of the same device kind and dtype, so a machine that is uniformly
slower does not read as a regression and a CPU figure never normalises a GPU run. It is also
MFU's denominator (bench.measure.flops).

CPU: a 1024x1024 fp32 matmul is 2.1 GFLOP, about 6 ms at the ~340 GFLOP/s measured on a 2-core
CPU, each product timed with perf_counter. A dtype the device runs slowly (bf16 on an AVX2-only
CPU runs ~100x slower) halves n until one product takes under MAX_REP_S, so the figure always
costs about a second; n is recorded with it.

CUDA: a 1024x1024 product takes microseconds on an H100, so launch and synchronisation would
dominate a per-call timing and the "peak" would be a fraction of the real rate. Instead n =
CUDA_N (8192: 1.1 TFLOP per product, about 1-2 ms at an H100's dense bf16 rate, large enough
for cuBLAS to reach its sustained throughput), CUDA_BURST products queued back to back into
one preallocated output, timed between two CUDA events: the host never waits inside a burst.
The figure is the median burst of CUDA_BURSTS after a warm-up burst (clocks ramp, cuBLAS picks
its kernel); `matmul_gflops_best` is the fastest. n halves if the device cannot hold three
n x n matrices under the run's memory fraction. Beside it, `datasheet_gflops`: the vendor's
dense peak for this device and dtype (bench.measure.datasheet), where the table knows the device.
"""

import statistics
import time

FIELD = "env.calibration"  # where the harness stores the dict below in each record
MAX_REP_S = 0.25
CUDA_N = 8192
CUDA_BURST = 10
CUDA_BURSTS = 5


def measure_calibration(*, device: str = "cpu", dtype: str = "float32", n: int = 1024, reps: int = 11,
                        warmup: int = 2, budget_s: float | None = None) -> dict:
    """Median GFLOP/s of an n x n matmul on `device` in `dtype`, on the current torch thread setting.
    `budget_s` stops measuring once that much time is spent (at least 3 reps). On CUDA, the
    burst measurement of `cuda_calibration` (n, reps and warmup do not apply)."""
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":
        return cuda_calibration(torch, device=device, dtype=dtype)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(0)

    def product_time(a, b):
        start = time.perf_counter()
        torch.mm(a, b)
        return time.perf_counter() - start

    while True:
        a = torch.randn(n, n, generator=generator).to(device=device, dtype=torch_dtype)
        b = torch.randn(n, n, generator=generator).to(device=device, dtype=torch_dtype)
        first = product_time(a, b)
        if first <= MAX_REP_S or n <= 64:
            break
        n //= 2
    for _ in range(warmup - 1):
        product_time(a, b)
    times, spent = [], 0.0
    while len(times) < reps and (budget_s is None or spent < budget_s or len(times) < 3):
        times.append(product_time(a, b))
        spent += times[-1]
    flop = 2 * n**3
    median = statistics.median(times)
    return {
        "matmul_gflops": flop / median / 1e9,
        "matmul_gflops_best": flop / min(times) / 1e9,
        "matmul_n": n,
        "reps": len(times),
        "spread_pct": spread_pct(times),
        "dtype": dtype,
        "device": kind,
        "threads": torch.get_num_threads(),
    }


def cuda_calibration(torch, *, device: str = "cuda", dtype: str = "bfloat16", n: int = CUDA_N,
                     burst: int = CUDA_BURST, bursts: int = CUDA_BURSTS) -> dict:
    """The CUDA peak (module docstring): bursts of back-to-back n x n products timed by CUDA
    events. `torch` is passed in so tests can hand it a fake."""
    from bench.measure.datasheet import peak_gflops

    torch_dtype = getattr(torch, dtype)
    while True:
        try:
            a, b = (torch.randn(n, n, device=device, dtype=torch_dtype) for _ in range(2))
            out = torch.empty(n, n, device=device, dtype=torch_dtype)
            break
        except torch.OutOfMemoryError:
            a = b = out = None
            torch.cuda.empty_cache()
            if n <= 1024:
                raise
            n //= 2

    def burst_s():
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(burst):
            torch.mm(a, b, out=out)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # ms -> s

    burst_s()  # warm-up: clocks, cuBLAS heuristics, lazy module load
    times = [burst_s() for _ in range(bursts)]
    a = b = out = None  # free the operands for empty_cache (burst_s is not called again)
    torch.cuda.empty_cache()
    flop = 2 * n**3 * burst
    name = torch.cuda.get_device_name(device)
    tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
    sheet = peak_gflops(name, dtype=dtype, tf32=tf32)
    return {
        "matmul_gflops": flop / statistics.median(times) / 1e9,
        "matmul_gflops_best": flop / min(times) / 1e9,
        "matmul_n": n,
        "reps": bursts,
        "spread_pct": spread_pct(times),
        "burst": burst,
        "timing": "cuda events around each burst of back-to-back products",
        "dtype": dtype,
        "device": "cuda",
        "device_name": name,
        "tf32": tf32,
        "datasheet_gflops": sheet["gflops"] if sheet else None,
        "datasheet_source": sheet["source"] if sheet else None,
    }


def spread_pct(times: list) -> float:
    """How much slower the median repeat is than the fastest, in %: a matmul that other processes
    keep preempting spreads its repeats (one contention signal, bench.results.gate.contention). The median,
    not the slowest, so one late repeat on a quiet machine does not count."""
    return 100 * (statistics.median(times) / min(times) - 1)


def calibration_kind(record: dict) -> str | None:
    """Where and in which dtype a record's calibration was measured ("cpu/float32",
    "cuda/bfloat16"), or None when it has none. Records written before calibrations named their
    device and dtype were all measured on the CPU in float32."""
    cal = (record.get("env") or {}).get("calibration")
    if not isinstance(cal, dict) or not isinstance(cal.get("matmul_gflops"), (int, float)) or cal["matmul_gflops"] <= 0:
        return None
    return f"{cal.get('device') or 'cpu'}/{cal.get('dtype') or 'float32'}"


def comparable(baseline: list, candidate: list) -> str | None:
    """Why the two sides' calibrations cannot normalise each other's throughput, or None when
    they can: every record on both sides carries one, and all of one device kind and dtype. A CPU
    matmul says nothing of a GPU's speed, nor a float32 one of bfloat16 tensor cores."""
    kinds = {}
    for side, records in (("baseline", baseline), ("candidate", candidate)):
        kinds[side] = sorted({str(calibration_kind(r)) for r in records})
        if "None" in kinds[side]:
            return f"no calibration in {side}"
    if len(set(kinds["baseline"] + kinds["candidate"])) > 1:
        return (f"calibrations differ: baseline {', '.join(kinds['baseline'])}, "
                f"candidate {', '.join(kinds['candidate'])}")
    return None
