"""A failed run's status from its exception, with the exception types CPU builds of torch carry
and the messages CUDA libraries raise through them (torch's TORCH_CUDABLAS_CHECK and cuDNN checks
raise RuntimeError; C10_CUDA_CHECK raises torch.AcceleratorError)."""

import pytest
import torch

from bench.results.failure import classify, one_line

OOM = [
    MemoryError(),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB"),
    torch.cuda.OutOfMemoryError("CUDA out of memory."),
    torch.AcceleratorError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasLtMatmul( ltHandle, computeDesc...`"),
    RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    OSError(12, "Cannot allocate memory"),
]
NOT_OOM = [
    RuntimeError("CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"),
    RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. "
                 "This error may appear if you passed in a non-contiguous input."),
    torch.AcceleratorError("CUDA error: an illegal memory access was encountered"),
    ValueError("expected 4 columns"),
]


@pytest.mark.parametrize("exc", OOM, ids=lambda e: one_line(e)[:60])
def test_out_of_memory_in_each_form_is_oom(exc):
    assert classify(exc) == "oom"


@pytest.mark.parametrize("exc", NOT_OOM, ids=lambda e: one_line(e)[:60])
def test_other_failures_are_errors(exc):
    assert classify(exc) == "error"


def test_oom_down_the_chain_is_oom():
    try:
        try:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
        except RuntimeError as inner:
            raise ValueError("forward failed in layer 3") from inner
    except ValueError as outer:
        assert classify(outer) == "oom"


def test_one_line_is_one_line():
    assert one_line(RuntimeError("a\n  b\tc")) == "RuntimeError: a b c"
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt: KeyboardInterrupt"


def test_the_worker_uses_this_classification():
    from bench.run import worker

    assert worker.classify is classify and worker.one_line is one_line
