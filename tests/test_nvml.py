"""NVML reads the GPU this process computes on, and counts this process only: a fake NVML with
four GPUs and a fake torch that enumerates them the way CUDA does under CUDA_VISIBLE_DEVICES."""

import os
import sys
import types
from dataclasses import dataclass

import pytest

from bench.measure import nvml as N
from bench.util.errors import BenchError

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

    def by(attr, value):
        return next((g for g in gpus if getattr(g, attr) == value), None)

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
    probe = N.Probe(torch=fake_torch(gpus, with_ids=with_ids), ordinal=int(os.environ["LOCAL_RANK"]),
                    nvml=fake_nvml(gpus))
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
    assert probe.read() == dict.fromkeys(N.FIGURES) and probe.where["error"].startswith("nvml unavailable: ")
    assert "libnvidia-ml" in probe.where["error"]


@pytest.mark.parametrize("value, parsed", [
    (None, None), ("2,3", [2, 3]), (" 1 , 0", [1, 0]), ("1,-1,2", [1]), ("0,0", []), ("", []), ("1gpu,2", [1, 2]),
    ("GPU-ab,GPU-cd", ["GPU-ab", "GPU-cd"]), ("GPU-ab,3", ["GPU-ab"]), ("MIG-x", ["MIG-x"]),
])
def test_visible_devices_parse_as_cuda_does(value, parsed):
    assert N.visible_devices(value) == parsed


# -- the driver: torch decides whether there is a GPU, NVML only adds --------------------------
H100 = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * GiB,
                             uuid="1111aaaa-0000-1111-2222-333344445555", pci_domain_id=0, pci_bus_id=0x17,
                             pci_device_id=0)
SHOW_ENV = ("import os, resource; print('MALLOC_MMAP_THRESHOLD_=' + os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset'),"
            " 'RLIMIT_DATA=' + ('unlimited' if resource.getrlimit(resource.RLIMIT_DATA)[0] == resource.RLIM_INFINITY"
            " else 'limited'), flush=True)")


def torch_sees(monkeypatch, devices: list) -> None:
    """This process's torch.cuda reports `devices` (the driver asks the torch already imported)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(devices))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(devices))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: devices[i])


def launched_env(tmp_path, monkeypatch, device: str) -> tuple:
    """What a launched child sees: the malloc setting and whether its data segment is limited."""
    from bench.run import launcher
    from bench.run.matrix import build_matrix, run_id
    from bench.run.profile import load_profile

    spec = dict(build_matrix(load_profile("smoke", overrides={"run": {
        "methods": ["lora"], "device": device, "cpu_malloc_mmap_threshold": 65536, "max_memory": "8GiB"}}))[0])
    spec["run_id"] = run_id(spec)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(launcher, "worker_command", lambda spec, path: [sys.executable, "-c", SHOW_ENV])
    record = launcher.launch(spec, out_dir=tmp_path, echo=lambda line: None)
    log = (tmp_path / "runs" / spec["run_id"] / "worker.log").read_text()
    return log, record["memory"]["device"]


def test_a_gpu_torch_sees_is_used_though_nvml_does_not_load(tmp_path, monkeypatch):
    """A container without libnvidia-ml: --device cuda is accepted, auto resolves to CUDA before
    the child's environment is built (no CPU malloc setting, no data-segment limit), and the
    worker's NVML figures are null with the reason."""
    from bench.run import hardware

    torch_sees(monkeypatch, [H100])
    broken = types.ModuleType("pynvml")
    broken.nvmlInit = lambda: (_ for _ in ()).throw(OSError("libnvidia-ml.so.1: cannot open shared object file"))
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert hardware.cuda_devices() == [("NVIDIA H100 80GB HBM3", 9, 0, 80 * GiB)]
    hardware.preflight([{"device": "cuda", "precision": "bf16-true", "nproc": 1}])
    assert hardware.run_device({"device": "auto"}) == "cuda"
    log, device = launched_env(tmp_path, monkeypatch, "auto")
    assert "MALLOC_MMAP_THRESHOLD_=unset RLIMIT_DATA=unlimited" in log and device == "cuda"
    import torch

    probe = N.Probe(torch=torch, ordinal=0)  # the worker's NVML, as CudaMemoryTracker makes it
    assert probe.read() == {"nvml_used_bytes": None, "nvml_total_bytes": None, "nvml_process_bytes": None}
    assert probe.where["error"].startswith("nvml unavailable: OSError: libnvidia-ml.so.1")


def test_gpus_nvml_lists_but_torch_cannot_use_are_not_a_cuda_machine(tmp_path, monkeypatch):
    """The reverse: NVML lists four GPUs, torch sees none (a CPU build, or no usable driver): auto
    runs on the CPU with the CPU settings, and --device cuda is refused."""
    from bench.run import hardware

    torch_sees(monkeypatch, [])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(machine()))
    assert hardware.cuda_devices() == [] and hardware.run_device({"device": "auto"}) == "cpu"
    with pytest.raises(BenchError, match="device 'cuda' requested but torch sees no CUDA device here"):
        hardware.preflight([{"device": "cuda", "precision": "auto", "nproc": 1}])
    log, device = launched_env(tmp_path, monkeypatch, "auto")
    assert "MALLOC_MMAP_THRESHOLD_=65536 RLIMIT_DATA=limited" in log and device == "cpu"


def test_torch_is_asked_in_a_child_only_when_its_build_can_have_a_gpu(tmp_path, monkeypatch):
    from bench.run import hardware

    def torch_at(version_text):
        (tmp_path / "torch").mkdir(exist_ok=True)
        (tmp_path / "torch" / "version.py").write_text(version_text)
        origin = str(tmp_path / "torch" / "__init__.py")
        monkeypatch.setattr(hardware.importlib.util, "find_spec", lambda name: types.SimpleNamespace(origin=origin))
        return hardware.torch_has_gpu_build()

    assert not torch_at("cuda: Optional[str] = None\nhip: Optional[str] = None\n")
    assert torch_at("cuda: Optional[str] = '12.8'\nhip: Optional[str] = None\n")
    assert torch_at("cuda = None\nhip = '6.2.4'\n")


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
