"""Processes: signals, spawning, reaping, supervision."""
