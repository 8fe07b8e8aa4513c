"""The run path stays small: an allow-list of what `shim -- true` may import.

An allow-list, not a deny-list: a new import on the plain path (a network client,
asyncio, tooling) fails here until someone decides it belongs there.
"""

import subprocess
import sys

from support import REPO

# What `python -S -m <anything>` loads before shim's code runs (runpy and the
# interpreter's own start-up); the static binary loads fewer of these.
INTERPRETER = {
    "_abc", "_codecs", "_collections", "_collections_abc", "_frozen_importlib_external",
    "_functools", "_io", "_operator", "_signal", "_stat", "abc", "codecs", "collections",
    "contextlib", "encodings", "encodings.aliases", "encodings.utf_8", "errno", "functools",
    "genericpath", "importlib", "importlib._abc", "importlib.machinery", "importlib.util", "io",
    "itertools", "keyword", "marshal", "operator", "os", "posix", "posixpath", "reprlib",
    "runpy", "stat", "time", "types", "warnings", "zipimport",
}
# shim's own modules on the exec path (no loop: nothing waits).
EXEC_PATH = {
    "shim", "shim.cli", "shim.errors", "shim.log", "shim.config", "shim.config.kinds",
    "shim.config.option", "shim.config.options", "shim.config.table", "shim.config.table.env",
    "shim.config.table.general", "shim.config.table.hooks", "shim.config.table.results",
    "shim.config.table.steps", "shim.config.table.supervise", "shim.proc", "shim.proc.native",
    "shim.proc.signals", "shim.proc.spawn", "shim.run", "shim.run.delegate",
    "shim.run.envlayer", "shim.run.pipeline", "_shim_native",
    # Every start decides the runtime (SHIM_RUNTIME, profiles.<runtime>): a table of markers,
    # os only (~0.2 ms); the SageMaker code itself loads only when configured.
    "shim.config.table.platform", "shim.platform", "shim.platform.detect", "shim.run.runtime",
    # issue 10: the secrets option table and the always-on credential hygiene (str ops only);
    # the sources and the HTTP client load only when a reference is configured
    "shim.config.table.secrets", "shim.run.hygiene",
    "shim.config.table.templates",  # issue 19: --template's option (rendering loads when set)
    "shim.util", "shim.util.stdio",  # output on fds 1 and 2 (closed/full stdout, 2>&-)
    # the option table of streams and telemetry (their code loads only when configured)
    "shim.config.table.logs", "shim.config.table.metrics", "shim.config.table.heartbeat",
    "shim.config.table.relay", "shim.config.table.report", "shim.run.services",
    "shim.config.table.debug",  # issue 20: breakpoint options (their code loads only when set)
    # issue 18: the identity option table and step (os only); the account files, capability
    # and limit parsers (shim.proc.identity) load only when an identity option is set
    "shim.config.table.identity", "shim.run.identity",
    # issue 17: the capability registry (pure data: resident options, services, --help),
    # the bottom layer's message helpers, and the Service contract run/services re-exports
    "shim.config.capabilities", "shim.util.text", "shim.service",
}
# ...plus, when shim stays resident: the loop, the reaper, the supervisor.
SUPERVISE_PATH = EXEC_PATH | {
    "shim.loop", "shim.proc.reaper", "shim.proc.supervise", "select", "heapq", "_heapq",
    "setproctitle",  # the design card's process-title package, when installed
}


def _imported(args):
    r = subprocess.run([sys.executable, "-S", "-X", "importtime", "-m", "shim"] + args,
                       cwd=REPO, capture_output=True, text=True, timeout=30)
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # importtime's header line
                names.add(name)
    return r, names


def test_exec_path_imports_only_the_allow_list():
    r, names = _imported(["--", "true"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "shim.run.pipeline" in names
    assert not names - INTERPRETER - EXEC_PATH, sorted(names - INTERPRETER - EXEC_PATH)


def test_supervise_path_imports_only_the_allow_list():
    r, names = _imported(["--supervise", "--", "true"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "shim.loop" in names
    extra = names - INTERPRETER - SUPERVISE_PATH
    assert not extra, sorted(extra)


# ...plus, with only local references (ref+env, ref+file): the secrets plan, the local
# sources and the mask registry.  No network client, no thread, no re/json/urllib
# (issue 17: a local reference costs at most a few ms over a bare start).
LOCAL_SECRETS_PATH = EXEC_PATH | {
    "shim.run.secrets", "shim.sources", "shim.sources.base", "shim.sources.embedded",
    "shim.sources.fetch", "shim.sources.refs", "shim.sources.settings", "shim.sources.targets",
    "shim.sources.env", "shim.sources.file", "shim.util.fsutil", "shim.util.mask", "shim.util.urlcode",
}


def test_local_references_import_only_the_allow_list(tmp_path):
    secret = tmp_path / "s"
    secret.write_text("value")
    for ref in ("ref+env://HOME", f"ref+file://{secret}"):
        r, names = _imported(["--no-mask-secrets", "--secret", f"X={ref}", "--", "true"])
        assert r.returncode == 0, r.stderr[-2000:]
        assert "shim.sources.fetch" in names
        extra = names - INTERPRETER - LOCAL_SECRETS_PATH
        assert not extra, (ref, sorted(extra))
