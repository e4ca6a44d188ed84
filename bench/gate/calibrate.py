"""The calibration figure: a fixed fp32 matmul benchmark measured in the same job as the runs.

The harness stores `measure_calibration()` in every record as `env.calibration`; the gate
divides throughput by `env.calibration.matmul_gflops` on each side, so a machine that is
uniformly slower does not read as a regression. A 1024x1024 fp32 matmul is 2.1 GFLOP: about
6 ms at the ~340 GFLOP/s measured on this 2-core CPU, so 2 warm-up and 11 measured reps
take well under a second even on a machine six times slower.
"""

import statistics
import time

FIELD = "env.calibration"  # where the harness stores the dict below in each record


def measure_calibration(*, n: int = 1024, reps: int = 11, warmup: int = 2) -> dict:
    """Median fp32 GFLOP/s of an n x n matmul, on the current torch thread setting."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator)
    b = torch.randn(n, n, generator=generator)
    for _ in range(warmup):
        torch.mm(a, b)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    flop = 2 * n**3
    median = statistics.median(times)
    return {
        "matmul_gflops": flop / median / 1e9,
        "matmul_gflops_best": flop / min(times) / 1e9,
        "matmul_n": n,
        "reps": reps,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
    }
