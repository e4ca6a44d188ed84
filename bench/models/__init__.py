"""Model names -> local directories, resolved in the parent before any run starts (no torch)."""

from bench.models.hub import source_of
from bench.models.resolve import BUILTIN, linear_module_names, resolve

__all__ = ["BUILTIN", "resolve", "linear_module_names", "source_of"]
