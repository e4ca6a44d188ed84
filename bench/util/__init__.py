"""Helpers every layer may import: errors, units, paths, atomic writes, asset set-up. No torch."""
