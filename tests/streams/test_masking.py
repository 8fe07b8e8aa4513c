"""Secret masking: values split across writes are still masked; they never reach a sink."""

import json
import subprocess
import sys

from streams_support import Collector
from support import base_env, shim_command

SECRET = "s3cr3t-VALUE-42"
OTHER = "pa55word"

# Writes the secret in every possible split (two writes, a pause between), on both streams.
SPLITTER = r"""
import os, sys, time
s = os.environ["SECRET"].encode()
for fd in (1, 2):
    for cut in range(1, len(s)):
        os.write(fd, b"<" + s[:cut]); time.sleep(0.002); os.write(fd, s[cut:] + b">\n")
os.write(1, os.environ["OTHER"].encode() + b" end")
"""


def test_split_writes_are_masked_everywhere(tmp_path):
    sink, tee = tmp_path / "sink.jsonl", tmp_path / "tee"
    collector = Collector()
    try:
        r = subprocess.run(shim_command() + [
            "--mask-env", "SECRET", "--mask-env", "OTHER", "--log-sink", f"file://{sink}",
            "--log-sink", f"tcp://127.0.0.1:{collector.port}", "--stdout-path", str(tee),
            "--", sys.executable, "-c", SPLITTER],
            env=base_env(SECRET=SECRET, OTHER=OTHER), capture_output=True, timeout=60)
    finally:
        collector.close()
    assert r.returncode == 0, r.stderr
    n = len(SECRET) - 1
    assert r.stdout == b"<***>\n" * n + b"*** end"
    assert r.stderr == b"<***>\n" * n
    assert tee.read_bytes() == r.stdout
    for data in (sink.read_bytes(), bytes(collector.data)):
        assert SECRET.encode() not in data and OTHER.encode() not in data
        lines = [json.loads(x)["line"] for x in data.splitlines()]
        assert lines.count("<***>") == 2 * n


def test_mask_delay_bounds_how_long_output_is_held(tmp_path):
    """A prefix of a secret at the end of a write is released after --mask-delay, not at EOF."""
    prog = ("import os, time\nos.write(1, b'abc s3cr')\ntime.sleep(1.0)\n"
            "os.write(1, b'et?\\n')\n")
    proc = subprocess.Popen(shim_command() + ["--mask-env", "SECRET", "--mask-delay", "50ms",
                                              "--", sys.executable, "-c", prog],
                            env=base_env(SECRET="s3cr3t"), stdout=subprocess.PIPE)
    import time

    t0 = time.monotonic()
    first = proc.stdout.read1(100)
    while first != b"abc s3cr":
        first += proc.stdout.read1(100)
    assert time.monotonic() - t0 < 0.9  # released before the delegate's next write
    assert proc.stdout.read() == b"et?\n"
    assert proc.wait(10) == 0


def test_one_character_and_empty_values_are_refused():
    for value in ("x", ""):
        r = subprocess.run(shim_command() + ["--mask-env", "V", "--", "true"],
                           env=base_env(V=value), capture_output=True, timeout=30)
        assert r.returncode == 125
        assert r.stderr.count(b"\n") == 1 and b"mask variable V" in r.stderr


def test_fetched_secrets_are_masked_when_shim_stays(tmp_path):
    """What the secrets step resolved (Run.secret_values) is masked like --mask-env."""
    secret = tmp_path / "token"
    secret.write_text("filesecret-42")
    sink = tmp_path / "sink.jsonl"
    r = subprocess.run(shim_command() + [
        "--supervise", "--secret", f"TOKEN=ref+file://{secret}", "--log-sink", f"file://{sink}",
        "--", "sh", "-c", "echo token=$TOKEN; printf filesec; sleep 0.01; echo ret-42 done"],
        env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"token=***\n*** done\n"
    assert b"filesecret-42" not in sink.read_bytes()


def test_fetched_secrets_keep_shim_resident_to_mask_them(tmp_path):
    # Not PID 1 and nothing else resident: fetching a secret alone must not let the value
    # reach the console through an exec'd delegate.
    secret = tmp_path / "s.txt"
    secret.write_text("hunter2-very-secret")
    cmd = ["--secret", f"PW=ref+file://{secret}", "--", "sh", "-c", 'echo "pw=$PW"']
    r = subprocess.run(shim_command() + cmd, env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"hunter2" not in r.stdout and b"pw=***" in r.stdout
    r = subprocess.run(shim_command() + ["--no-mask-secrets"] + cmd, env=base_env(),
                       capture_output=True, timeout=60)
    assert r.stdout == b"pw=hunter2-very-secret\n"


# A carry that resolves, then a new one: the new one gets its own --mask-delay, not what
# was left of the old one's (that timer flushed the start of the secret in clear).
RECARRY = r"""
import os, time
s = os.environ["SECRET"].encode()
os.write(1, b"a " + s[:1]); time.sleep(1.5)   # carry: the first byte of the secret
os.write(1, b"x token=" + s[:5]); time.sleep(1.5)  # resolved ("sx" is no secret); new carry
os.write(1, s[5:] + b" end\n")
"""


def test_each_carry_is_held_its_own_mask_delay():
    r = subprocess.run(shim_command() + ["--mask-env", "SECRET", "--mask-delay", "2500ms", "--",
                                         sys.executable, "-c", RECARRY],
                       env=base_env(SECRET=SECRET), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a " + SECRET[:1].encode() + b"x token=*** end\n"
