#!/usr/bin/env python3
"""Why shim has its own epoll loop: import cost and wake-up latency, measured side by side.

    scripts/bench_loop.py        (run with the venv's python: it needs uvloop for the third row)

Rows: shim.loop, asyncio's default loop, asyncio + uvloop (the design card's package).
Import cost is measured inside a fresh interpreter (min of 15), wake-up latency is the
median time from a pipe write to its reader callback over 3000 round trips.
Figures are recorded in docs/architecture.md; nothing here asserts a time.
"""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_S = str(Path(__file__).resolve().parent.parent)

def import_cost(stmt, n=15):
    # measured inside a fresh interpreter, so process start-up noise stays out
    code = "import time; t=time.perf_counter(); " + stmt + "; print(time.perf_counter()-t)"
    times = [float(subprocess.run([sys.executable, "-I", "-c", code], check=True,
                                  capture_output=True, text=True).stdout) for _ in range(n)]
    return min(times)

def wake_shim(n=3000):
    sys.path.insert(0, REPO_S)
    from shim.loop import Loop
    loop = Loop(); r, w = os.pipe2(os.O_NONBLOCK); lat = []; state = {"t": 0, "n": 0}
    def on_read():
        os.read(r, 64); lat.append(time.perf_counter() - state["t"]); state["n"] += 1
    loop.add_reader(r, on_read)
    for i in range(n):
        state["t"] = time.perf_counter(); os.write(w, b"x")
        target = i + 1
        loop.run_until(lambda: state["n"] >= target)
    return statistics.median(lat)

def wake_asyncio(n=3000, uv=False):
    import asyncio
    if uv:
        import uvloop; loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    r, w = os.pipe2(os.O_NONBLOCK); lat = []
    async def main():
        for i in range(n):
            fut = loop.create_future()
            def on_read():
                os.read(r, 64); lat.append(time.perf_counter() - t0)
                if not fut.done(): fut.set_result(None)
            loop.add_reader(r, on_read)
            t0 = time.perf_counter(); os.write(w, b"x")
            await fut
            loop.remove_reader(r)
    loop.run_until_complete(main())
    return statistics.median(lat)

base = 0.0
rows = [("shim.loop", import_cost(f"import sys; sys.path.insert(0, {REPO_S!r}); import shim.loop; shim.loop.Loop()") - base, wake_shim()),
        ("asyncio", import_cost("import asyncio; asyncio.new_event_loop()") - base, wake_asyncio()),
        ("asyncio+uvloop", import_cost("import asyncio, uvloop; uvloop.new_event_loop()") - base, wake_asyncio(uv=True))]
print(f"{'loop':16} {'import+create ms':>17} {'pipe wake-up us':>16}")
for name, imp, wake in rows:
    print(f"{name:16} {imp*1000:17.2f} {wake*1e6:16.1f}")
