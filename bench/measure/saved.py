"""What autograd saves for backward, counted by storage: a probe for the planner's activation terms.

Inside `probe()`, every tensor autograd saves passes a saved_tensors_hooks pack hook; the probe
notes its storage (several saved views of one storage count once) and skips parameters and
their storages (already resident, not activations). `bytes()` is the sum over unique storages,
`by_shape()` groups them by shape and dtype so a term can be named. Measurement only: nothing
is logged or written.
"""

from contextlib import contextmanager


class SavedTensors:
    def __init__(self, model=None):
        self.params = set()
        if model is not None:
            self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages = {}  # data_ptr -> (nbytes, shape, dtype) of the first tensor seen on it

    def _pack(self, tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key and key not in self.params and key not in self.storages:
            self.storages[key] = (storage.nbytes(), tuple(tensor.shape), str(tensor.dtype).replace("torch.", ""))
        return tensor

    @contextmanager
    def probe(self):
        import torch

        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self

    def bytes(self) -> int:
        return sum(n for n, _, _ in self.storages.values())

    def by_shape(self) -> dict:
        out = {}
        for n, shape, dtype in self.storages.values():
            key = (shape, dtype)
            out[key] = out.get(key, 0) + n
        return out
