"""shim: a container-entrypoint compatibility layer.

`shim [options] -- command args…` prepares the delegate's environment, runs its
pre-steps, then either execs it or supervises it as a correct PID 1.
"""

__version__ = "0.1.0"
