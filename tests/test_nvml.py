"""NVML reads the GPU this process computes on, and counts this process only: a fake NVML with
four GPUs and a fake torch that enumerates them the way CUDA does under CUDA_VISIBLE_DEVICES."""

import os
import sys
import types
from dataclasses import dataclass

import pytest

from bench.errors import BenchError
from bench.measure import nvml as N

GiB = 2**30
ME = os.getpid()
OTHER = ME + 1


@dataclass
class Gpu:
    index: int
    uuid: str
    pci: str
    used: int
    processes: list  # [(pid, bytes)]


def machine():
    """Four GPUs; each holds 5 GiB of another process, and GPU 3 also 1 GiB of this one."""
    gpus = [Gpu(i, f"GPU-{i}{i}{i}{i}aaaa-0000-1111-2222-33334444555{i}", f"00000000:{0x17 + i:02x}:00.0",
                5 * GiB, [(OTHER, 5 * GiB)]) for i in range(4)]
    gpus[3].processes.append((ME, 1 * GiB))
    gpus[3].used += 1 * GiB
    return gpus


def fake_nvml(gpus) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    by = lambda attr, value: next((g for g in gpus if getattr(g, attr) == value), None)

    def lookup(attr):
        def get(key):
            gpu = by(attr, key.decode() if isinstance(key, bytes) else key)
            if gpu is None:
                raise RuntimeError("NVML_ERROR_NOT_FOUND")
            return gpu
        return get

    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    nvml.nvmlDeviceGetHandleByUUID = lookup("uuid")
    nvml.nvmlDeviceGetHandleByPciBusId = lookup("pci")
    nvml.nvmlDeviceGetUUID = lambda g: g.uuid.encode()
    nvml.nvmlDeviceGetName = lambda g: f"Fake GPU {g.index}".encode()
    nvml.nvmlDeviceGetCudaComputeCapability = lambda g: (9, 0)
    nvml.nvmlDeviceGetMemoryInfo = lambda g: types.SimpleNamespace(used=g.used, total=80 * GiB, free=80 * GiB - g.used)
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda g: [types.SimpleNamespace(pid=p, usedGpuMemory=b)
                                                           for p, b in g.processes]
    return nvml


def fake_torch(gpus, *, with_ids=True):
    """torch.cuda as CUDA enumerates it: only the GPUs CUDA_VISIBLE_DEVICES names, from 0."""
    visible = N.visible_handles(fake_nvml(gpus), N.visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES")))

    def props(ordinal):
        gpu = visible[ordinal]
        if not with_ids:
            return types.SimpleNamespace(name="fake")
        domain, bus, rest = gpu.pci.split(":")
        return types.SimpleNamespace(uuid=gpu.uuid[4:], pci_domain_id=int(domain, 16), pci_bus_id=int(bus, 16),
                                     pci_device_id=int(rest.split(".")[0], 16))
    return types.SimpleNamespace(cuda=types.SimpleNamespace(get_device_properties=props))


@pytest.mark.parametrize("with_ids, how", [(True, "uuid"), (False, "CUDA_VISIBLE_DEVICES")])
def test_local_rank_1_under_visible_2_3_reads_physical_gpu_3(monkeypatch, with_ids, how):
    gpus = machine()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    probe = N.Probe(torch=fake_torch(gpus, with_ids=with_ids), ordinal=int(os.environ["LOCAL_RANK"]), nvml=fake_nvml(gpus))
    assert probe.where["how"] == how and probe.where["nvml_uuid"] == gpus[3].uuid
    assert probe.read()["nvml_process_bytes"] == 1 * GiB  # NVML's index 1 would have been GPU 1: no figure of ours


def test_the_pci_bus_id_is_used_when_the_uuid_is_unknown(monkeypatch):
    gpus = machine()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    torch = fake_torch(gpus)
    nvml = fake_nvml(gpus)
    nvml.nvmlDeviceGetHandleByUUID = lambda key: (_ for _ in ()).throw(RuntimeError("NVML_ERROR_NOT_SUPPORTED"))
    probe = N.Probe(torch=torch, ordinal=0, nvml=nvml)
    assert probe.where["how"] == "pci_bus_id" and probe.where["nvml_uuid"] == gpus[3].uuid
    assert probe.where["pci_bus_id"] == gpus[3].pci


def test_uuid_form_visible_devices_with_prefixes(monkeypatch):
    gpus = machine()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-3333,GPU-1111aaaa")  # unique prefixes, as CUDA accepts
    probe = N.Probe(torch=fake_torch(gpus, with_ids=False), ordinal=0, nvml=fake_nvml(gpus))
    assert probe.where["how"] == "CUDA_VISIBLE_DEVICES" and probe.where["nvml_uuid"] == gpus[3].uuid
    probe = N.Probe(torch=fake_torch(gpus, with_ids=False), ordinal=1, nvml=fake_nvml(gpus))
    assert probe.where["nvml_uuid"] == gpus[1].uuid


def test_other_processes_memory_is_not_counted():
    gpus = machine()
    figures = N.figures(fake_nvml(gpus), gpus[3], pid=ME)
    assert figures["nvml_used_bytes"] == 6 * GiB        # device-wide: the other process's 5 GiB too
    assert figures["nvml_process_bytes"] == 1 * GiB      # this process only
    assert N.figures(fake_nvml(gpus), gpus[0], pid=ME)["nvml_process_bytes"] is None  # not listed: unknown, not 0
    gpus[3].processes.append((ME, None))                  # NVML hides the figure
    assert N.figures(fake_nvml(gpus), gpus[3], pid=ME)["nvml_process_bytes"] is None


def test_without_nvml_the_probe_reads_nothing_and_says_why():
    broken = types.SimpleNamespace(nvmlInit=lambda: (_ for _ in ()).throw(OSError("libnvidia-ml.so.1 not found")))
    probe = N.Probe(torch=fake_torch(machine()), ordinal=0, nvml=broken)
    assert probe.read() == {} and "libnvidia-ml" in probe.where["error"]


@pytest.mark.parametrize("value, parsed", [
    (None, None), ("2,3", [2, 3]), (" 1 , 0", [1, 0]), ("1,-1,2", [1]), ("0,0", []), ("", []), ("1gpu,2", [1, 2]),
    ("GPU-ab,GPU-cd", ["GPU-ab", "GPU-cd"]), ("GPU-ab,3", ["GPU-ab"]), ("MIG-x", ["MIG-x"]),
])
def test_visible_devices_parse_as_cuda_does(value, parsed):
    assert N.visible_devices(value) == parsed


def test_driver_preflight_counts_only_visible_gpus(monkeypatch):
    from bench import hardware

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(machine()))
    hardware._cuda_devices.cache_clear()
    try:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
        assert [d[0] for d in hardware.cuda_devices()] == ["Fake GPU 3"]
        spec = {"device": "auto", "nproc": 2, "precision": "auto"}
        with pytest.raises(BenchError, match=r"--nproc 2 is more than the 1 visible GPU\(s\); valid choices: 1 to 1"):
            hardware.preflight([spec])
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        with pytest.raises(BenchError, match="device 'cuda' requested but no NVIDIA GPU is visible"):
            hardware.preflight([dict(spec, device="cuda", nproc=1)])
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        assert len(hardware.cuda_devices()) == 4
        hardware.preflight([dict(spec, nproc=4)])
    finally:
        hardware._cuda_devices.cache_clear()


class NoPermission(Exception):
    """pynvml's NVMLError_NoPermission stands in: any exception from one call."""


def _failing(nvml, name):
    def fail(*args):
        raise NoPermission(f"{name}: Insufficient Permissions")
    setattr(nvml, name, fail)
    return nvml


def test_one_failing_call_keeps_the_other_figures():
    gpus = machine()
    nvml = _failing(fake_nvml(gpus), "nvmlDeviceGetComputeRunningProcesses")  # common in containers
    got = N.figures(nvml, gpus[3], pid=ME)
    assert got["nvml_used_bytes"] == 6 * GiB and got["nvml_total_bytes"] == 80 * GiB
    assert got["nvml_process_bytes"] is None
    assert "Insufficient Permissions" in got["nvml_errors"]["nvmlDeviceGetComputeRunningProcesses"]
    nvml = _failing(fake_nvml(gpus), "nvmlDeviceGetMemoryInfo")
    got = N.figures(nvml, gpus[3], pid=ME)
    assert got["nvml_process_bytes"] == 1 * GiB and got["nvml_used_bytes"] is None
    assert list(got["nvml_errors"]) == ["nvmlDeviceGetMemoryInfo"]
    assert "nvml_errors" not in N.figures(fake_nvml(gpus), gpus[3], pid=ME)


def test_a_probe_whose_uuid_call_fails_still_reads(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = machine()
    nvml = _failing(fake_nvml(gpus), "nvmlDeviceGetUUID")
    probe = N.Probe(torch=fake_torch(gpus), ordinal=3, nvml=nvml)
    assert probe.where["how"] == "uuid" and probe.where["nvml_uuid"] is None and "uuid_error" in probe.where
    assert probe.read()["nvml_used_bytes"] == 6 * GiB
    probe.nvml = _failing(nvml, "nvmlDeviceGetComputeRunningProcesses")
    assert probe.read()["nvml_used_bytes"] == 6 * GiB  # before: read() returned {} on any failure
