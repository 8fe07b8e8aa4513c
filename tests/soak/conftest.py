"""Soak tier: long runs of real processes; only through `scripts/test soak`."""
