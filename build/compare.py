"""Figures for docs/freeze.md: start-up, RSS, size and process count per artifact.

    /usr/bin/python3.11 build/compare.py NAME=PATH... [--runs N]

For each artifact `X`: `hyperfine -N` of `X -- /bin/true` (bare /bin/true,
tini-static and dumb-init measured in the same run), the summed VmRSS of every
process between X and its delegate while `X -- sleep` runs, the processes in
that chain (with --supervise, so shim stays the delegate's parent), and the
file size.  Prints a Markdown table.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCES = {"tini-static -s": ["/usr/bin/tini-static", "-s", "--"], "dumb-init": ["/usr/bin/dumb-init"]}


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def chain(argv, delegate=("/bin/sleep", "30")):
    """(processes between X and the delegate, their summed RSS in kB)."""
    proc = subprocess.Popen([*argv, *delegate], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            path, pid = [proc.pid], proc.pid
            while True:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "sleep":
                        break
                kids = children(pid)
                if not kids:
                    path = None
                    break
                pid = kids[0]
                path.append(pid)
            if path:
                shims = path[:-1]
                return len(shims), sum(rss_kb(p) for p in shims)
            time.sleep(0.05)
        raise RuntimeError(f"no delegate under {argv}")
    finally:
        proc.kill()
        proc.wait()


def hyperfine(commands, runs):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "-w", "20", "-r", str(runs), "--export-json", out.name]
        for name, cmd in commands.items():
            argv += ["-n", name, cmd]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(out.name))
    return {r["command"]: (r["mean"] * 1000, r["stddev"] * 1000) for r in data["results"]}


def main(argv):
    runs = 200
    if "--runs" in argv:
        i = argv.index("--runs")
        runs = int(argv[i + 1])
        del argv[i:i + 2]
    artifacts = dict(a.split("=", 1) for a in argv)
    commands = {"/bin/true (bare exec)": "/bin/true"}
    commands.update({n: " ".join(c + ["/bin/true"]) for n, c in REFERENCES.items()})
    commands.update({n: f"{p} -- /bin/true" for n, p in artifacts.items()})
    times = hyperfine(commands, runs)
    bare = times["/bin/true (bare exec)"][0]
    print("| artifact | `X -- /bin/true` | overhead vs bare exec | processes X→delegate | RSS of those | size |")
    print("|---|---|---|---|---|---|")
    # --supervise: the chain and RSS while shim stays as the delegate's parent.
    rows = [(n, c) for n, c in REFERENCES.items()] + [(n, [p, "--supervise", "--"]) for n, p in artifacts.items()]
    print(f"| /bin/true (bare exec) | {bare:.1f} ms | — | 0 | — | — |")
    for name, cmd in rows:
        mean, sd = times[name]
        count, rss = chain(cmd)
        size = Path(cmd[0]).stat().st_size / 1e6
        print(f"| {name} | {mean:.1f} ± {sd:.1f} ms | {mean - bare:.1f} ms | {count} "
              f"| {rss / 1024:.1f} MB | {size:.2f} MB |")


if __name__ == "__main__":
    main(sys.argv[1:])
