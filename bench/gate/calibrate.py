"""The calibration figure: a fixed matmul benchmark measured in the same process as the run, on
the run's device and in its compute dtype.

The harness stores `measure_calibration(device=..., dtype=...)` in every record as
`env.calibration`; the gate divides throughput by `env.calibration.matmul_gflops` on each side,
and only between calibrations of the same device kind and dtype, so a machine that is uniformly
slower does not read as a regression and a CPU figure never normalises a GPU run. A 1024x1024
fp32 matmul is 2.1 GFLOP: about 6 ms at the ~340 GFLOP/s measured on this 2-core CPU. A dtype the
device runs slowly (bf16 on an AVX2-only CPU runs ~100x slower) halves n until one product takes
under MAX_REP_S, so the figure always costs about a second; n is recorded with it.
"""

import statistics
import time

FIELD = "env.calibration"  # where the harness stores the dict below in each record
MAX_REP_S = 0.25


def measure_calibration(*, device: str = "cpu", dtype: str = "float32", n: int = 1024, reps: int = 11,
                        warmup: int = 2, budget_s: float | None = None) -> dict:
    """Median GFLOP/s of an n x n matmul on `device` in `dtype`, on the current torch thread setting.
    `budget_s` stops measuring once that much time is spent (at least 3 reps)."""
    import torch

    kind = device.split(":")[0]
    sync = torch.cuda.synchronize if kind == "cuda" else (lambda: None)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(0)

    def product_time(a, b):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
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
        "dtype": dtype,
        "device": kind,
        "threads": torch.get_num_threads(),
    }


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
        return f"calibrations differ: baseline {', '.join(kinds['baseline'])}, candidate {', '.join(kinds['candidate'])}"
    return None
