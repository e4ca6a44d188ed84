"""The worker's failure classes: an out-of-memory in any of its forms is `oom` (data, not a
crash), anything else `error`; and the one-line message a record keeps.

classify and one_line live in bench.results.failure (the worker imports them from there); the CUDA forms
are tests/test_failure.py's.
"""

import pytest
import torch

from bench.results.failure import classify, one_line


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError (and accelerate's), which classify matches by name."""


def cpu_allocation_failure() -> RuntimeError:
    """A real one: torch's CPU allocator refusing 256 TiB, more than a 47-bit user address space
    can map, so it fails even where the kernel overcommits."""
    try:
        torch.empty(2**48, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    raise AssertionError("the allocation succeeded")


@pytest.mark.parametrize("exc", [
    MemoryError(),
    OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 50331648 bytes. Error code 12 (Cannot allocate memory)"),
    # (the one above: seen under --max-memory)
    RuntimeError("CUDA error: out of memory"),
    OSError(12, "Cannot allocate memory"),
    RuntimeError("Out Of Memory while packing"),
], ids=["MemoryError", "OutOfMemoryError-by-name", "cpu-allocator", "cuda-error", "ENOMEM", "any-case"])
def test_out_of_memory_in_any_form_is_oom(exc):
    assert classify(exc) == "oom"


def test_a_real_cpu_allocation_failure_is_oom():
    assert classify(cpu_allocation_failure()) == "oom"


@pytest.mark.parametrize("exc", [
    ValueError("run.steps must be > 0"), RuntimeError("expected scalar type Float but found BFloat16"),
    KeyboardInterrupt(), FloatingPointError("loss became nan at step 3"), OSError(2, "No such file or directory"),
    RuntimeError("memory format not supported"),  # names memory, is no shortage of it
])
def test_everything_else_is_error(exc):
    assert classify(exc) == "error"


def test_one_line_keeps_the_class_and_joins_the_lines():
    assert one_line(ValueError("bad\n  value\tthere")) == "ValueError: bad value there"
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt: KeyboardInterrupt"
    assert len(one_line(RuntimeError("x" * 2000))) == 500
