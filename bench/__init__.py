"""ftbench: measure what full fine-tuning, LoRA, QLoRA, DoRA and 8-bit LoRA really cost."""

__version__ = "0.1.0"
