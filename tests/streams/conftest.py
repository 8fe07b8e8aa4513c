"""Streams tier: real processes (shim from source or $SHIM_BIN), real sockets on loopback."""
