"""What a failed run's exception means: its status ('oom' or 'error') and its one-line text.

Running out of memory is data (status 'oom'), and `fit` reads it as "does not fit"; anything
else is an 'error' and stops the search. Out of memory reaches Python in several forms:
  - MemoryError (CPU allocations under the launcher's data-segment limit);
  - torch.OutOfMemoryError, also exported as torch.cuda.OutOfMemoryError (the caching
    allocator could not grow its pool);
  - a RuntimeError or torch.AcceleratorError carrying a CUDA status: "CUDA error: out of memory"
    (cudaErrorMemoryAllocation from a kernel launch or a library's own cudaMalloc),
    "CUBLAS_STATUS_ALLOC_FAILED" (cuBLAS could not allocate its handle or workspace, raised by
    torch's TORCH_CUDABLAS_CHECK), "CUDNN_STATUS_ALLOC_FAILED" (cuDNN's workspace);
  - the same text further down the exception chain (a library re-raising with `from`).
Not read as oom: CUBLAS_STATUS_NOT_INITIALIZED, which an exhausted device often causes at
`cublasCreate` but a broken driver causes too; calling it oom could make `fit` report a smaller
size where the run was in fact broken.
"""

SIGNS = ("out of memory", "can't allocate memory", "cannot allocate memory",
         "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:500]


def classify(exc: BaseException) -> str:
    """'oom' for out-of-memory in any of its forms (see the module docstring), else 'error'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or any(k.__name__ == "OutOfMemoryError" for k in type(exc).__mro__):
            return "oom"
        text = str(exc).lower()
        if any(sign in text for sign in SIGNS):
            return "oom"
        exc = exc.__cause__ or exc.__context__
    return "error"
