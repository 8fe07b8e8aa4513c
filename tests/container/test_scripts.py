"""The infrastructure scripts keep working: set-up is idempotent, the bench runs.

Functional checks only; no figure is asserted (benchmarks never gate tests).
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*argv, timeout=300):
    return subprocess.run([str(REPO / argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO)


@pytest.fixture(autouse=True)
def root_only():
    if os.geteuid() != 0:
        # Same rule as require_tool: under CI a missing prerequisite fails, never skips.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("scripts/setup and scripts/bench need root", pytrace=False)
        pytest.skip("needs root, as CI has")


def test_setup_twice_changes_nothing_the_second_time():
    first = run("scripts/setup")
    assert first.returncode == 0, first.stderr
    again = run("scripts/setup")
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == "setup: ok", again.stderr


def test_bench_signal_delivers_term_through_every_init():
    # Every candidate as PID 1 of a new PID namespace must pass TERM to the delegate;
    # the bench notes any run in which the delegate never saw it.
    proc = run("scripts/bench", "signal", "size", "--runs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "shim-src" in proc.stdout
    assert "the delegate saw TERM in" not in proc.stdout, proc.stdout
    assert "n/a" not in proc.stdout, proc.stdout
