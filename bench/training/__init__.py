"""What the worker trains with: methods, the loop, the precision policy, DDP/FSDP."""
