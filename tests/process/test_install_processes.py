"""`shim install` under real process pressure: ten installers at once, kill -9 at
random moments, a second version populated while a first one runs.

Moved from the unit tier (about 45 s of real processes); helpers are shared with
tests/unit/test_install.py.
"""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from install_support import REPO, SHIM, elf, no_temps, run_install
from shim.commands import install


def test_ten_concurrent_installers_all_succeed_with_one_intact_result(tmp_path):
    src = elf(tmp_path / "big", 0x3E, size=24 << 20, seed=7)
    dest = tmp_path / "vol"
    procs = [subprocess.Popen(SHIM + ["--from", str(src), str(dest)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(10)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in results), results
    assert (dest / "shim").read_bytes() == src.read_bytes()
    assert sorted(os.listdir(dest)) == ["shim"]


def test_ten_concurrent_versioned_installers_make_one_version(tmp_path):
    src = elf(tmp_path / "big", 0x3E, size=8 << 20, seed=8)
    dest = tmp_path / "vol"
    procs = [subprocess.Popen(SHIM + ["--versioned", "--from", str(src), str(dest)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(10)]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _, _ in outs), outs
    (version,) = os.listdir(dest)
    assert (dest / version / "shim").read_bytes() == src.read_bytes()
    assert sum(out.startswith("installed") for _, out, _ in outs) >= 1


def test_kill_9_at_any_moment_never_leaves_a_partial_binary(tmp_path):
    src = elf(tmp_path / "big", 0x3E, size=64 << 20, seed=9)
    data = src.read_bytes()
    rnd = random.Random(1)
    interrupted = 0
    for attempt in range(24):
        dest = tmp_path / f"vol{attempt}"
        layout = ["--versioned"] if attempt % 2 else []
        proc = subprocess.Popen(SHIM + layout + ["--from", str(src), str(dest)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Python start-up is ~20-40 ms; the copy and fsync of 64 MiB take longer.
        time.sleep(rnd.uniform(0.02, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not dest.exists():
            continue
        finals = [p for p in dest.rglob("shim") if install.TMP_PREFIX not in str(p)]
        for path in finals:
            assert path.read_bytes() == data, f"partial binary at {path}"
        interrupted += bool(no_temps(dest))
        # The next installer sweeps what the dead one left once it is stale, and succeeds.
        for temp in no_temps(dest):
            old = time.time() - 2 * install.STALE_AFTER
            os.utime(dest / temp, (old, old))
        again = run_install(*layout, "--from", str(src), str(dest))
        assert again.returncode == 0, again.stderr
        assert no_temps(dest) == []
    print(f"{interrupted} of 24 kills landed while a temp file existed")
    assert interrupted >= 3, "the kills never landed mid-write; the test proves nothing"


def test_second_version_is_populated_while_the_first_runs_and_the_first_is_untouched(tmp_path):
    v1_src, v2_src = tmp_path / "v1", tmp_path / "v2"
    # Real executables of different content: a copied /bin/sleep and the same with a byte appended.
    v1_src.write_bytes(Path("/bin/sleep").read_bytes())
    v2_src.write_bytes(Path("/bin/sleep").read_bytes() + b"\0")
    dest = tmp_path / "pvc"
    out1 = run_install("--versioned", "--from", str(v1_src), str(dest)).stdout.split()[1]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in Path(out1).parent.rglob("*")}
    pod = subprocess.Popen([out1, "30"])  # a "pod" running version 1
    try:
        out2 = run_install("--versioned", "--from", str(v2_src), str(dest))
        assert out2.returncode == 0, out2.stderr
        assert Path(out2.stdout.split()[1]).parent != Path(out1).parent
        assert pod.poll() is None
        after = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in Path(out1).parent.rglob("*")}
        assert after == before
        assert len(run_install("--list", str(dest)).stdout.splitlines()) == 2
    finally:
        pod.kill()
        pod.wait()
