"""The CUDA peak measured as a peak: large products queued back to back and timed by CUDA events,
checked on a fake torch that records what the code asks of the device (no GPU here; the real
thing runs in tests/test_gpu.py and scripts/gpu_check.sh). And the datasheet table."""

import types

import pytest

from bench.measure import datasheet, matmul as calibrate


class FakeCuda:
    """A device whose product takes `s_per_product` of device time; it logs every call."""

    def __init__(self, *, s_per_product, name="NVIDIA H100 80GB HBM3", free_elements=None):
        self.s, self.name, self.free, self.log, self.clock = s_per_product, name, free_elements, [], 0.0
        cuda = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.t = None

            def record(self):
                cuda.log.append("record")
                self.t = cuda.clock

            def synchronize(self):
                cuda.log.append("event-sync")

            def elapsed_time(self, other):
                return (other.t - self.t) * 1e3  # ms, as torch's

        self.Event = Event
        self.synchronize = lambda *a: self.log.append("device-sync")
        self.empty_cache = lambda: None
        self.get_device_name = lambda device=None: self.name

    def torch(self):
        class OutOfMemoryError(RuntimeError):
            pass

        def alloc(n, m, **kw):
            if self.free is not None and n * m > self.free:
                raise OutOfMemoryError("CUDA out of memory")
            return types.SimpleNamespace(shape=(n, m))

        def mm(a, b, out=None):
            self.log.append("mm")
            self.clock += self.s

        return types.SimpleNamespace(
            cuda=self, bfloat16="bf16", float16="fp16", float32="fp32", OutOfMemoryError=OutOfMemoryError,
            randn=alloc, empty=alloc, mm=mm,
            backends=types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False))))


def test_bursts_of_large_products_timed_by_events():
    fake = FakeCuda(s_per_product=2 * 8192**3 / 700e12)  # a device sustaining 700 TFLOP/s
    got = calibrate.cuda_calibration(fake.torch(), device="cuda:0", dtype="bfloat16")
    assert got["matmul_n"] == 8192 and got["matmul_gflops"] == pytest.approx(700e3)
    assert got["datasheet_gflops"] == pytest.approx(989.5e3) and "H100" in got["datasheet_source"]
    assert got["device"] == "cuda" and got["dtype"] == "bfloat16" and got["device_name"] == "NVIDIA H100 80GB HBM3"
    assert got["spread_pct"] == pytest.approx(0.0)  # every burst took the same device time
    # no host wait inside a burst: record, 10 products, record, then one wait on the end event
    burst = ["record"] + ["mm"] * calibrate.CUDA_BURST + ["record", "event-sync"]
    assert fake.log == burst * (1 + calibrate.CUDA_BURSTS)


def test_a_device_without_room_halves_n():
    fake = FakeCuda(s_per_product=1e-3, name="Some Future GPU", free_elements=4096 * 4096)
    got = calibrate.cuda_calibration(fake.torch(), dtype="bfloat16")
    assert got["matmul_n"] == 4096 and got["datasheet_gflops"] is None and got["datasheet_source"] is None
    assert got["matmul_gflops"] == pytest.approx(2 * 4096**3 / 1e-3 / 1e9)


@pytest.mark.parametrize("name, dtype, tf32, gflops", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", False, 989_500), ("NVIDIA H100 PCIe", "float16", False, 756_500),
    ("NVIDIA H100 NVL", "bfloat16", False, 835_500), ("NVIDIA H200", "bfloat16", False, 989_500),
    ("NVIDIA A100-SXM4-80GB", "bfloat16", False, 312_000), ("NVIDIA A100 80GB PCIe", "float32", True, 156_000),
    ("NVIDIA A100-SXM4-40GB", "float32", False, 19_500), ("NVIDIA L40S", "bfloat16", False, 362_050),
    ("NVIDIA GeForce RTX 4090", "bfloat16", False, 165_200), ("NVIDIA GeForce RTX 3090", "float16", False, 71_000),
])
def test_datasheet_dense_peaks(name, dtype, tf32, gflops):
    assert datasheet.peak_gflops(name, dtype=dtype, tf32=tf32)["gflops"] == pytest.approx(gflops)


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 3090 Ti", "NVIDIA GeForce RTX 4090 D", "Tesla T4", "", None])
def test_unknown_devices_get_no_figure(name):
    assert datasheet.peak_gflops(name, dtype="bfloat16") is None


def test_spread_is_the_median_repeat_over_the_fastest():
    """One late repeat on a quiet machine does not count; a preempted majority does."""
    assert calibrate.spread_pct([1.0, 1.0, 1.0, 1.0, 9.0]) == pytest.approx(0.0)
    assert calibrate.spread_pct([1.0, 1.5, 1.5, 2.0, 2.0]) == pytest.approx(50.0)
    cpu = calibrate.measure_calibration(device="cpu", n=64, reps=3, warmup=1)
    assert cpu["spread_pct"] >= 0
