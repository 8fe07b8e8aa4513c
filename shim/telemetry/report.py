"""The run report (`--report PATH|URL`): one JSON document at exit, Chalk-like.

What ran (shim's version and build; the delegate's argv[0] only: arguments and
environment values may hold secrets), where (runtime and its evidence, container
and pod ids when known), how it went (phases, exit code, signal, reason) and the
counters of logs and metrics.  A path is written atomically; an http(s) URL gets it
by POST.
"""

import os

from shim.errors import REASON_SETUP, ShimError, usage_error
from shim.service import Service
from shim.util.text import oserror, show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

    from shim.service import Summary

REPORT_VERSION = 1


class Report(Service):
    """A run service whose only hook is `finished`: the outcome is known by then."""

    def __init__(self, target, log=None):
        """Refuses (usage error, before anything runs) a URL that is neither http(s) nor file."""
        scheme, sep, rest = target.partition("://")
        if sep and scheme.lower() == "file":  # file:///PATH (file://localhost/PATH) is a path
            target = rest if rest.startswith("/") else "/" + rest.partition("/")[2]
        elif sep and scheme.lower() not in ("http", "https"):
            raise usage_error("option --report", f"unsupported URL scheme {show(scheme + '://')}",
                              "give a file PATH, file:///PATH or an http(s):// URL")
        elif sep:  # an endpoint the client cannot request (port 0, an unclosed '['): now
            from shim.net.url import URLError, parse
            try:
                parse(target)
            except URLError as err:
                raise usage_error("option --report", f"cannot read URL: {err}",
                                  "give a file PATH, file:///PATH or an http(s):// URL") from None
        self.target = target
        self.log = log or (lambda level, message: None)

    def finished(self, summary: "Summary") -> None:
        from shim.util import jsonio

        body = jsonio.dumps(build(summary), indent=True) + b"\n"
        if self.target.startswith(("http://", "https://")):
            from shim.telemetry.httpcall import request

            status: "int | str"  # the HTTP status, or why no response came
            try:
                status, _ = request("POST", self.target, body,
                                    {"Content-Type": "application/json"}, timeout=5.0)
            except OSError as err:
                status = oserror(err)
            if not isinstance(status, int) or status >= 300:
                from shim.net.url import redacted
                cause = f"answered HTTP {status}" if isinstance(status, int) else status
                raise ShimError("send", f"run report to {redacted(self.target)}", cause,
                                "check the report endpoint", reason=REASON_SETUP)
            return
        from shim.util.fsutil import atomic_write

        try:
            atomic_write(self.target, body, what="run report")
        except ShimError:
            raise
        except OSError as err:
            raise ShimError("write", f"run report {self.target}", oserror(err),
                            "check the directory", reason=REASON_SETUP) from None


def build(summary: "Summary") -> "dict[str, Any]":
    """The report as a dict, from the run's Summary (nothing secret)."""
    from shim.util.buildinfo import identity
    from shim.util.text import iso

    outcome, finished, argv0, started = summary.outcome, summary.finished, summary.argv0, summary.started
    info = identity()
    return {
        "report_version": REPORT_VERSION,
        "shim": {k: info.get(k) for k in ("version", "commit", "build_date", "arch", "freezer")},
        "runtime": runtime(summary),
        "ids": ids(summary.environ),
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_ms": round((finished - started) * 1000, 3),
        "phases_ms": {name: round(s * 1000, 3) for name, s in summary.phases.items()},
        "mode": summary.mode,
        "delegate": {"argv0": os.path.basename(argv0) if argv0 else None},
        "exit_code": outcome.exit_code if outcome else None,
        "delegate_exit_code": outcome.delegate_code if outcome else None,
        "signal": outcome.signal_name if outcome else None,
        "reason": outcome.reason if outcome else None,
        "counters": summary.counters,
        # names only: which step added, removed or changed each variable (shim.run.provenance)
        "environment": summary.provenance,
    }


def runtime(summary: "Summary") -> "dict[str, Any]":
    """The runtime the platform step decided (shim.platform.detect) and its evidence."""
    if summary.detection is not None:
        found = summary.detection.as_dict()
        return {"name": found.get("runtime"), **found}
    return fallback_runtime(summary.environ)


def fallback_runtime(environ: "Mapping[str, str]") -> "dict[str, Any]":
    """Markers of a container runtime, for a config without the platform step."""
    evidence = []
    name = environ.get("SHIM_RUNTIME")
    if name:
        evidence.append("SHIM_RUNTIME")
    elif environ.get("KUBERNETES_SERVICE_HOST"):
        name, evidence = "kubernetes", ["KUBERNETES_SERVICE_HOST"]
    elif environ.get("container"):  # the systemd convention podman and others follow
        name, evidence = environ["container"], ["container variable"]
    elif os.path.exists("/run/.containerenv"):
        name, evidence = "podman", ["/run/.containerenv"]
    elif os.path.exists("/.dockerenv"):
        name, evidence = "docker", ["/.dockerenv"]
    else:
        cgroup = _read("/proc/self/cgroup")
        for marker, runtime_name in (("kubepods", "kubernetes"), ("libpod", "podman"),
                                     ("docker", "docker"), ("containerd", "containerd")):
            if marker in cgroup:
                name, evidence = runtime_name, ["/proc/self/cgroup"]
                break
    return {"name": name, "evidence": evidence}


def _read(path):
    try:
        with open(path) as f:
            return f.read(65536)
    except OSError:
        return ""


def ids(environ: "Mapping[str, str]") -> "dict[str, str]":
    """Container and pod ids when the environment tells them."""
    out = {"hostname": os.uname().nodename}
    container = _container_id()
    if container:
        out["container_id"] = container
    for key, names in (("pod", ("POD_NAME", "MY_POD_NAME")), ("namespace", ("POD_NAMESPACE",
                       "MY_POD_NAMESPACE")), ("pod_uid", ("POD_UID", "MY_POD_UID")),
                       ("image", ("SHIM_IMAGE", "IMAGE"))):
        for name in names:
            if environ.get(name):
                out[key] = environ[name]
                break
    return out


def _container_id():
    """A 64-hex id from /proc/self/cgroup or mountinfo (docker, podman, containerd, cri-o)."""
    import re

    pattern = re.compile(r"([0-9a-f]{64})")
    for path in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        match = pattern.search(_read(path))
        if match:
            return match.group(1)
    return None
