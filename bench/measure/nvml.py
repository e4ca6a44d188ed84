"""NVML's figures for the GPU this process computes on, and for this process alone.

NVML numbers GPUs in PCI bus order and ignores CUDA_VISIBLE_DEVICES; CUDA numbers only the
visible GPUs, from 0. So under CUDA_VISIBLE_DEVICES=2,3 the rank on `cuda:1` computes on physical
GPU 3, and NVML's index 1 is another GPU. The NVML handle is therefore found, in this order, by
  1. the device's UUID from torch (`get_device_properties(i).uuid`, which lacks NVML's "GPU-"),
  2. its PCI bus id from torch (`pci_domain_id`, `pci_bus_id`, `pci_device_id`),
  3. CUDA_VISIBLE_DEVICES (indices, or GPU-/MIG- UUIDs and unique prefixes of them, as CUDA
     parses it), then the CUDA ordinal itself when the variable is unset. Indices assume CUDA
     enumerates in PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID), which is why 1 and 2 come first.

Device-wide `used` counts every process on the GPU and the driver's own reservations. The
process figure sums the compute-process entries whose pid is this process's; it is None when
NVML does not list this pid (in a container NVML may report host pids) or hides the figure.

Nothing here imports torch: callers pass it, and pass pynvml too or let `Probe` import it, so
tests can pass fakes of both. The driver uses the parsing and `visible_handles` without torch.
"""

import os

PREFIXES = ("GPU-", "MIG-")
FIGURES = ("nvml_used_bytes", "nvml_total_bytes", "nvml_process_bytes")  # null when NVML cannot say


def visible_devices(value: str | None) -> list | None:
    """CUDA_VISIBLE_DEVICES parsed as CUDA does: None when unset (every GPU visible), else ints
    or UUID strings. Parsing stops at the first invalid entry, and a repeated entry hides all."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith(PREFIXES):
        kind = value[:4]
        entries = []
        for item in value.split(","):
            item = item.strip()
            if not item.startswith(kind):
                break
            if item in entries:
                return []
            entries.append(item)
        return entries
    indices = []
    for item in value.split(","):
        digits = _leading_int(item.strip())
        if digits is None or digits < 0:
            break
        if digits in indices:
            return []
        indices.append(digits)
    return indices


def _leading_int(text: str) -> int | None:
    """strtoul-like: '1gpu' -> 1, '-1' -> -1, 'x' -> None."""
    end = 0
    while end < len(text) and (text[end].isdigit() or (end == 0 and text[end] in "+-")):
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return None


def visible_handles(nvml, visible: list | None) -> list:
    """NVML handles of the GPUs CUDA would enumerate under `visible` (visible_devices' result):
    every GPU when None; an index past the last GPU, or an unknown UUID, ends the list as in CUDA."""
    everything = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    if visible is None:
        return everything
    uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in everything]
    chosen = []
    for entry in visible:
        if isinstance(entry, int):
            handle = everything[entry] if entry < len(everything) else None
        elif entry.startswith("MIG-"):  # a MIG instance: NVML resolves its full UUID directly
            handle = _or_none(nvml.nvmlDeviceGetHandleByUUID, entry)
        else:
            matches = [h for h, uuid in zip(everything, uuids) if uuid.startswith(entry)]
            handle = matches[0] if len(matches) == 1 else None
        if handle is None:
            break
        chosen.append(handle)
    return chosen


def _or_none(lookup, key):
    try:
        return lookup(key)
    except Exception:
        return None


def torch_identity(torch, ordinal: int) -> dict:
    """The UUID ("GPU-...") and PCI bus id ("00000000:65:00.0") torch reports for `cuda:ordinal`;
    either is None where this torch build does not expose it."""
    props = torch.cuda.get_device_properties(ordinal)
    uuid = str(getattr(props, "uuid", "") or "") or None
    if uuid and not uuid.startswith(PREFIXES):
        uuid = "GPU-" + uuid
    try:
        pci = f"{int(props.pci_domain_id):08x}:{int(props.pci_bus_id):02x}:{int(props.pci_device_id):02x}.0"
    except (AttributeError, TypeError, ValueError):
        pci = None
    return {"ordinal": ordinal, "uuid": uuid, "pci_bus_id": pci}


def find_handle(nvml, *, ordinal: int, uuid: str | None = None, pci_bus_id: str | None = None,
                visible: list | None = None) -> tuple:
    """(handle, how) for CUDA ordinal `ordinal` of this process; how names the route that
    matched: "uuid", "pci_bus_id", "CUDA_VISIBLE_DEVICES" or "ordinal". Raises LookupError."""
    # torch reports a MIG instance's UUID without saying it is one: try it as either kind
    uuids = [uuid, "MIG-" + uuid[4:]] if uuid and uuid.startswith("GPU-") else [uuid]
    routes = [("uuid", key, nvml.nvmlDeviceGetHandleByUUID) for key in uuids]
    for how, key, lookup in routes + [("pci_bus_id", pci_bus_id, nvml.nvmlDeviceGetHandleByPciBusId)]:
        handle = _or_none(lookup, key) if key else None
        if handle is not None:
            return handle, how
    if visible is None:
        return nvml.nvmlDeviceGetHandleByIndex(ordinal), "ordinal"
    handles = visible_handles(nvml, visible)
    if ordinal >= len(handles):
        raise LookupError(f"cuda:{ordinal} is not among the {len(handles)} GPU(s) CUDA_VISIBLE_DEVICES leaves visible")
    return handles[ordinal], "CUDA_VISIBLE_DEVICES"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def process_bytes(nvml, handle, *, pid: int) -> int | None:
    """Device memory NVML charges to process `pid` on this GPU; None when NVML does not list the
    pid or hides its figure (usedGpuMemory None)."""
    figures = [p.usedGpuMemory for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid]
    if not figures or any(f is None for f in figures):
        return None
    return int(sum(figures))


def figures(nvml, handle, *, pid: int | None = None) -> dict:
    """This GPU's used and total memory (all processes) and this process's own figure. Each NVML
    call stands alone: one that fails (no permission in a container, a call an older driver
    lacks) leaves its figures None and names itself in `nvml_errors`, the others are kept."""
    out, errors = dict.fromkeys(FIGURES), {}
    try:
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        out.update(nvml_used_bytes=int(info.used), nvml_total_bytes=int(info.total))
    except Exception as exc:
        errors["nvmlDeviceGetMemoryInfo"] = _why(exc)
    try:
        out["nvml_process_bytes"] = process_bytes(nvml, handle, pid=os.getpid() if pid is None else pid)
    except Exception as exc:
        errors["nvmlDeviceGetComputeRunningProcesses"] = _why(exc)
    if errors:
        out["nvml_errors"] = errors
    return out


def _why(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:200]


class Probe:
    """NVML for one torch CUDA ordinal, resolved once. `read()` returns `figures`, or the same keys
    null when NVML is unavailable (no driver library in the container, no handle for this GPU):
    torch found the GPU and the run goes on; `where` says which GPU and how it was found, or
    in `error` why not ("nvml unavailable: ...")."""

    def __init__(self, *, torch, ordinal: int, nvml=None):
        self.handle, self.where = None, {"ordinal": ordinal, "how": None}
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            ident = torch_identity(torch, ordinal)
            handle, how = find_handle(nvml, ordinal=ordinal, uuid=ident["uuid"], pci_bus_id=ident["pci_bus_id"],
                                      visible=visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES")))
            self.nvml, self.handle = nvml, handle
            self.where = {**ident, "how": how, "nvml_uuid": None}
        except Exception as exc:  # no NVML is a missing figure, never a failed run
            self.where["error"] = "nvml unavailable: " + _why(exc)
            return
        try:  # only a label: a driver that will not give the UUID still gives the figures
            self.where["nvml_uuid"] = _text(nvml.nvmlDeviceGetUUID(handle))
        except Exception as exc:
            self.where["uuid_error"] = _why(exc)

    def read(self) -> dict:
        """`figures` for this GPU (null without a handle); a failing call costs only its own figures."""
        return dict.fromkeys(FIGURES) if self.handle is None else figures(self.nvml, self.handle)
