"""`shim doctor [--format text|json] [OPTIONS]`: what in this machine or image would break a run.

Each check is one line, `ok`, `warn` or `fail`, with what was found and, when it is not ok,
the fix.  The run options (flags, SHIM_* variables, --config) are read as a run reads them,
so the writable-path check covers the files this configuration would write.

    /proc mounted          environ, signal state, descendants for the drain
    PID 1 or subreaper     orphans reaped
    writable paths         result file, termination message, post file, tee files, secret
                           files and directories, the debug directory, TMPDIR
    trust store            certificates for https references and sinks
    DNS                    /etc/resolv.conf and /etc/hosts
    clock                  SigV4 (AWS) refuses requests more than 5 minutes off
    privileges             no_new_privs and the capability sets
    memory                 the cgroup's limit against the log capture buffers

Exit 0 when no check fails (warnings allowed), 118 (setup error) when one does.  Nothing is
changed: doctor reads files and asks the kernel, it writes nothing.
"""

import os
import time

from shim.errors import EXIT_SETUP, ShimError
from shim.util.stdio import write_stdout

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

    from shim.config.options import Config

USAGE = "usage: shim doctor [--format text|json] [OPTIONS]"
OK, WARN, FAIL = "ok", "warn", "fail"
# The clock cannot be earlier than this (shim did not exist before): SigV4 needs ±5 minutes.
EARLIEST = 1735689600  # 2025-01-01T00:00:00Z
LATEST = 4102444800  # 2100-01-01: a clock this far ahead is broken too
BUFFER_SHARE = 0.25  # capture buffers above this share of the memory limit: warn


class Check:
    __slots__ = ("name", "status", "detail", "fix")

    def __init__(self, name, status, detail, fix=""):
        self.name, self.status, self.detail, self.fix = name, status, detail, fix

    def as_dict(self) -> "dict[str, str]":
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def main(argv: "list[str]", environ: "Mapping[str, str] | None" = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    fmt, run_argv = _format(argv)
    if fmt is None:
        return 0
    config = _config(run_argv, environ)
    checks = run_checks(config, environ)
    if fmt == "json":
        from shim.util import jsonio

        summary = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
        write_stdout(jsonio.dumps({"checks": [c.as_dict() for c in checks], "summary": summary},
                                  indent=True) + b"\n")
    else:
        write_stdout("".join(render(c) for c in checks))
    return EXIT_SETUP if any(c.status == FAIL for c in checks) else 0


def _format(argv):
    from shim.config.kinds import convert
    from shim.config.option import ENUM, Option
    from shim.errors import usage_error

    opt = Option("format", ["--format"], None, ENUM, "text", "", choices=("text", "json"))
    fmt, rest, i = "text", [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            write_stdout(USAGE + "\n")
            return None, []
        flag, eq, inline = arg.partition("=")
        if flag == "--format":
            if not eq:
                if i + 1 >= len(argv):
                    raise usage_error("doctor option --format", "missing value",
                                      "write --format text or --format json")
                i += 1
                inline = argv[i]
            fmt = convert(opt, inline, flag)
        else:
            rest.append(arg)
        i += 1
    return fmt, rest


def _config(argv, environ):
    from shim.config import options

    if "--" not in argv:
        argv = argv + ["--", "true"]  # the command does not matter here
    try:
        return options.resolve(argv, environ)
    except options.HelpRequested:
        return options.resolve(["--", "true"], environ)


def render(check: "Check") -> str:
    line = f"{check.status:4} {check.name}: {check.detail}"
    if check.fix and check.status != OK:
        line += f"; fix: {check.fix}"
    return " ".join(line.split()) + "\n"


def run_checks(config: "Config", environ: "Mapping[str, str]") -> "list[Check]":
    checks = []
    for step in (proc_mounted, reaping, writable_paths, trust_store, dns, clock, privileges,
                 memory):
        try:
            found = step(config, environ)
        except Exception as err:  # a check that breaks is a finding, not a crash
            found = Check(step.__name__, WARN, f"could not check ({type(err).__name__}: {err})")
        checks += found if isinstance(found, list) else [found]
    return checks


# -- the checks, in the order a run meets them ---------------------------------------------------
def proc_mounted(config: "Config", environ: "Mapping[str, str]") -> "Check":
    if os.path.exists("/proc/self/status"):
        return Check("/proc", OK, "mounted")
    return Check("/proc", FAIL, "not mounted: shim cannot read its inherited environment exactly, "
                 "nor find leftover descendants to drain",
                 "mount proc at /proc (every container runtime does unless told otherwise)")


def reaping(config: "Config", environ: "Mapping[str, str]") -> "Check":
    if os.getpid() == 1:
        return Check("reaping", OK, "shim would be PID 1 and reap every orphan")
    if not config.supervise.subreaper:
        return Check("reaping", WARN, "not PID 1 and --no-subreaper: orphans go to PID 1",
                     "run shim as the container's entrypoint (PID 1), or drop --no-subreaper")
    from shim.proc import native

    was = _is_subreaper()
    if native.set_child_subreaper(True):
        if not was:
            native.set_child_subreaper(False)  # leave this process as it was
        return Check("reaping", OK, f"not PID 1 (pid {os.getpid()}); shim becomes a child "
                     "subreaper and reaps the delegate's orphans")
    return Check("reaping", WARN, "not PID 1 and cannot become a child subreaper: orphans of "
                 "the delegate go to PID 1", "run shim as PID 1 (ENTRYPOINT [\"shim\", \"--\"])")


def _is_subreaper():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        value = ctypes.c_int(0)
        if libc.prctl(37, ctypes.byref(value), 0, 0, 0) == 0:  # PR_GET_CHILD_SUBREAPER
            return bool(value.value)
    except (OSError, AttributeError, ImportError):
        pass
    return False


def writable_paths(config: "Config", environ: "Mapping[str, str]") -> "list[Check]":
    from shim.run.lifecycle import unwritable

    wanted = []  # (what, directory)
    for name, what in (("result_file", "--result-file"), ("termination_path", "--termination-path"),
                       ("post_file", "--post-file"), ("stdout_path", "--stdout-path"),
                       ("stderr_path", "--stderr-path")):
        path = config.value(name)
        if path:
            wanted.append((what, os.path.dirname(os.path.abspath(path))))
    for path in list(config.secrets.files) + list(config.secrets.dirs):
        wanted.append(("secret target " + path, os.path.dirname(os.path.abspath(path))))
    for item in getattr(config, "templates", None) or ():
        if item.get("destination"):
            wanted.append(("template " + item["destination"],
                           os.path.dirname(os.path.abspath(item["destination"]))))
    for sink in config.logs.sinks:
        if sink.startswith("file://"):
            path = sink[len("file://"):].split("?", 1)[0]
            wanted.append(("--log-sink " + path, os.path.dirname(os.path.abspath(path))))
    report = config.report.target
    if report and "://" not in report:
        wanted.append(("--report", os.path.dirname(os.path.abspath(report))))
    if config.debug.dir:
        wanted.append(("--debug-dir", config.debug.dir))
    tmp = environ.get("TMPDIR") or "/tmp"
    checks = []
    for what, directory in wanted:
        cause = unwritable(directory)
        checks.append(Check(f"writable {what}", FAIL if cause else OK,
                            f"{directory} {cause}" if cause else f"{directory} is writable",
                            "mount a writable volume there (emptyDir) or point the option "
                            "elsewhere"))
    cause = unwritable(tmp)
    checks.append(Check("writable TMPDIR", WARN if cause else OK,
                        f"{tmp} {cause}" if cause else f"{tmp} is writable",
                        "mount a tmpfs at /tmp (readOnlyRootFilesystem adds none) or set TMPDIR; "
                        "hooks and many programs need one"))
    return checks


def trust_store(config: "Config", environ: "Mapping[str, str]") -> "Check":
    from shim.net import tls

    source = tls.trust_source(environ=environ)
    if source.startswith("none"):
        return Check("trust store", FAIL, "no CA bundle found (image, SSL_CERT_FILE or embedded)",
                     "install ca-certificates or set SSL_CERT_FILE")
    try:
        tls.client_context(environ=environ)
    except ShimError as err:
        return Check("trust store", FAIL, err.cause, err.fix)
    except ImportError:
        return Check("trust store", WARN, "this build has no TLS (no _ssl module)",
                     "use a shim build with TLS for https references and sinks")
    return Check("trust store", OK, source)


def dns(config: "Config", environ: "Mapping[str, str]") -> "list[Check]":
    checks = []
    try:
        with open("/etc/resolv.conf") as f:
            servers = [line.split()[1] for line in f if line.startswith("nameserver") and
                       len(line.split()) > 1]
    except OSError as err:
        checks.append(Check("DNS", WARN, f"/etc/resolv.conf: {(err.strerror or '').lower()}",
                            "only /etc/hosts names resolve; mount resolv.conf (the runtime "
                            "normally does)"))
    else:
        if servers:
            checks.append(Check("DNS", OK, "nameservers " + ", ".join(servers)))
        else:
            checks.append(Check("DNS", WARN, "/etc/resolv.conf names no nameserver",
                                "add a nameserver line, or rely on /etc/hosts only"))
    if not os.path.exists("/etc/hosts"):
        checks.append(Check("hosts", WARN, "/etc/hosts is missing: localhost may not resolve",
                            "add /etc/hosts with '127.0.0.1 localhost'"))
    return checks


def clock(config: "Config", environ: "Mapping[str, str]") -> "Check":
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if now < EARLIEST or now > LATEST:
        return Check("clock", FAIL, f"the clock says {stamp}",
                     "fix the host's time (NTP): AWS SigV4 refuses requests more than 5 "
                     "minutes off, TLS certificates look not yet valid or expired")
    return Check("clock", OK, f"{stamp} (plausible; SigV4 needs it within 5 minutes of real time)")


def privileges(config: "Config", environ: "Mapping[str, str]") -> "Check":
    nnp = _status_field("NoNewPrivs")
    eff = _status_field("CapEff")
    if nnp is None or eff is None:
        return Check("privileges", WARN, "unknown without /proc", "mount /proc")
    caps = bin(int(eff, 16)).count("1")
    detail = f"no_new_privs {nnp}, uid {os.getuid()}, {caps} effective capabilities"
    if nnp == "1" and caps == 0 and os.getuid() != 0:
        return Check("privileges", OK, detail + " (least privilege)")
    if caps >= 38:
        return Check("privileges", WARN, detail + " (privileged)",
                     "drop capabilities (securityContext.capabilities.drop: [ALL]) unless the "
                     "delegate needs them")
    return Check("privileges", OK, detail)


def memory(config: "Config", environ: "Mapping[str, str]") -> "Check":
    limit = _memory_limit()
    logs = config.logs
    sinks = len(logs.sinks) + bool(logs.stdout_path) + bool(logs.stderr_path)
    need = logs.buffer * max(sinks, 1) + 2 * logs.max_line
    if limit is None:
        return Check("memory", OK, f"no cgroup memory limit; capture buffers up to {need} bytes")
    detail = f"cgroup limit {limit} bytes; capture buffers up to {need} bytes"
    if need > limit * BUFFER_SHARE:
        return Check("memory", WARN, detail + f" (over {int(BUFFER_SHARE * 100)}% of the limit)",
                     "lower --log-buffer or raise the container's memory limit")
    return Check("memory", OK, detail)


def _memory_limit():
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            return int(text)
        return None  # "max", or v1's huge "unlimited"
    return None


def _status_field(name):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except OSError:
        return None
    return None
