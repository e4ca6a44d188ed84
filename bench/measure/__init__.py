"""Measurement only: memory trackers, step timers and parameter counters.

Nothing here logs, prints or writes files; callers take the figures and record them.
"""
