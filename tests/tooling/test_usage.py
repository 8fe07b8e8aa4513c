"""The runtime's help names the tooling subcommands; a group without a subcommand says what to type next."""

import pytest

from tooling_support import shim_tools


def test_runtime_help_names_the_tooling():
    proc = shim_tools("--help")
    assert proc.returncode == 0
    usage = proc.stdout.split("\n\n")[0]
    assert "shim k8s inject|webhook|lint" in usage and "shim dockerfile wrap" in usage


@pytest.mark.parametrize("group, subcommands", [("k8s", "inject, webhook, lint"), ("dockerfile", "wrap")])
def test_group_alone_gives_the_usage(group, subcommands):
    proc = shim_tools(group)
    assert proc.returncode == 125 and proc.stdout == ""
    assert "arguments are required" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("usage: shim k8s inject")
    assert proc.stderr.splitlines()[-1] == (f"shim: parse shim {group}: no subcommand given; use one of {subcommands} "
                                            f"(`shim {group} SUBCOMMAND --help`)")
