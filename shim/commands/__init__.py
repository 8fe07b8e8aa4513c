"""Subcommands of the runtime binary (version, check, install, ...)."""
