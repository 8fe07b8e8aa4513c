"""The one map between the kernel's machine names and OCI/Kubernetes arch names.

Every place that turns `uname -m` into `amd64`/`arm64` (the runtime, install,
version, build/, tools-image/, scripts and tests) uses this module, so a new arch
is one line here.  Stdlib only, no imports: build scripts load it by path.
"""

import os

# OCI arch -> facts about it.  `machine`: uname -m; `elf`: ELF e_machine;
# `triplet`: the GNU toolchain triplet; `loader`: glibc's dynamic loader.
ARCH_INFO: dict[str, dict[str, str | int]] = {
    "amd64": {"machine": "x86_64", "elf": 0x3E, "triplet": "x86_64-linux-gnu",
              "loader": "/lib64/ld-linux-x86-64.so.2"},
    "arm64": {"machine": "aarch64", "elf": 0xB7, "triplet": "aarch64-linux-gnu",
              "loader": "/lib/ld-linux-aarch64.so.1"},
}
# The arches shim is built for, in order.
ARCHES = tuple(ARCH_INFO)
# uname -m (and the OCI names themselves) -> OCI arch; other arches map to themselves
# after these aliases, so "linux/riscv64" still names the right platform.
MACHINE_TO_ARCH: dict[str, str] = dict(
    {str(info["machine"]): arch for arch, info in ARCH_INFO.items()},
    amd64="amd64", arm64="arm64", armv7l="arm", armv8l="arm")
ELF_MACHINES: dict[int, str] = {int(info["elf"]): arch for arch, info in ARCH_INFO.items()}


def arch_of(machine: str) -> str:
    """OCI arch name of a `uname -m` value ('x86_64' -> 'amd64'); unknown names pass through."""
    machine = machine.lower()
    return MACHINE_TO_ARCH.get(machine, machine)


def machine_of(arch: str) -> str:
    """`uname -m` value of an OCI arch ('arm64' -> 'aarch64')."""
    return str(ARCH_INFO[arch]["machine"])


def triplet(arch: str) -> str:
    """GNU toolchain triplet of an OCI arch ('arm64' -> 'aarch64-linux-gnu')."""
    return str(ARCH_INFO[arch]["triplet"])


def loader(arch: str) -> str:
    """glibc's dynamic loader path for an OCI arch."""
    return str(ARCH_INFO[arch]["loader"])


def running_arch() -> str:
    """OCI arch of the running kernel/process."""
    return arch_of(os.uname().machine)


def platform_of(machine: "str | None" = None) -> str:
    """'linux/<arch>' for `machine` (default: the running one)."""
    return "linux/" + (arch_of(machine) if machine else running_arch())
