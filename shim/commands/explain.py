"""`shim explain [--format text|json] [--fetch] [OPTIONS] -- COMMAND...`: what a run would do.

Everything `shim [OPTIONS] -- COMMAND` would do, with no side effect (nothing fetched unless
--fetch, no file written, nothing started): every option that has a value and where it came
from (a flag, which variable, which config key, which profile, the default); the runtime
decision and its evidence; exec or supervise and why; the delegate's argv and how it was
found; the environment as a diff against what shim inherited, each name with the step that
touched it -- names only, never a value (references are shown as written); files that would
be written; hooks; wait conditions; sinks.

`--fetch` also resolves every reference once and reports ok / missing / denied / unreachable,
the latency, and the value's length and sha256 prefix -- never the value.

Exit code: 0 when the run would start, else the run's own code (125 bad configuration --
every error is reported, not only the first --, 127/126 delegate not found / not executable,
117 a reference that cannot be fetched).  So it is a CI check.
"""

import os
import time

from shim.config import options
from shim.config.option import BOOL, ENUM, MAP, Option
from shim.errors import ShimError
from shim.util.stdio import write_stderr, write_stdout

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

    from shim.config.options import Config

USAGE = "usage: shim explain [--format text|json] [--fetch] [OPTIONS] -- COMMAND [ARGS...]"
# explain's own flags (before '--', beside the run options).
OWN = (
    Option("format", ["--format"], None, ENUM, "text", "text for a person, json for tools",
           choices=("text", "json")),
    Option("fetch", ["--fetch"], None, BOOL, False,
           "resolve every reference and report its status (never its value)"),
)
# Options whose values are environment values (any of them may be a password): names only.
ENV_VALUES = ("env", "default_env", "prepend_env", "append_env")
HASH_PREFIX = 12  # hex digits of a fetched value's sha256 shown by --fetch


def main(argv: "list[str]", environ: "Mapping[str, str] | None" = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    try:
        own, run_argv = _split_own(argv)
    except options.HelpRequested:
        write_stdout(USAGE + "\n")
        return 0
    report, errors = explain(run_argv, environ, fetch=own.get("fetch", False))
    code = errors[0].code if errors else 0
    report["exit_code"] = code
    report["errors"] = [err.message() for err in errors]
    if own.get("format") == "json":
        from shim.util import jsonio

        write_stdout(jsonio.dumps(report, indent=True) + b"\n")
    else:
        write_stdout(render_text(report))
    for err in errors:
        write_stderr(f"shim: {err.message()}\n")
    return code


def _split_own(argv):
    """explain's flags out of the run's argv (only before '--')."""
    from shim.config.kinds import convert

    own, rest, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or (not arg.startswith("-") and arg != "-"):
            rest += argv[i:]
            break
        flag, eq, inline = arg.partition("=")
        if flag == "--fetch":
            own["fetch"] = convert(OWN[1], inline, flag) if eq else True
        elif flag == "--format":
            if not eq:
                if i + 1 >= len(argv):
                    from shim.errors import usage_error

                    raise usage_error("explain option --format", "missing value",
                                      "write --format text or --format json")
                i += 1
                inline = argv[i]
            own["format"] = convert(OWN[0], inline, flag)
        elif arg in ("-h", "--help"):
            raise options.HelpRequested()
        else:
            rest.append(arg)
        i += 1
    return own, rest


# -- the report ---------------------------------------------------------------------------
def explain(argv: "list[str]", environ: "Mapping[str, str]",
            fetch: bool = False) -> "tuple[dict[str, Any], list[ShimError]]":
    """(report dict, [ShimError]): everything a run would do, and every error on the way."""
    errors = config_errors(argv, environ)
    if errors:
        return {"command": None}, errors
    config = options.resolve(argv, environ)
    report = {"command": list(config.command), "options": option_sources(config, argv, environ),
              "runtime": config.detection.as_dict() if config.detection else None}
    from shim.run import lifecycle

    errors += lifecycle.problems(config, environ)
    env, steps, sources_env, targets = environment(config, environ, errors)
    report["environment"] = env_diff(environ, env, steps)
    report["references"] = [reference(t) for t in targets]
    report["mode"], report["mode_reasons"] = mode(config, targets, errors)
    report["delegate"] = delegate(config, env, bool(options.parse_argv(argv)[1]), errors)
    report["files"] = files(config, targets)
    report["identity"] = identity(config)
    report["hooks"] = hooks(config)
    report["wait"] = waits(config)
    report["sinks"] = sinks(config)
    if fetch and targets:
        report["fetch"] = fetch_all(config, targets, sources_env, errors)
    return report, errors


def config_errors(argv: "list[str]", environ: "Mapping[str, str]") -> "list[ShimError]":
    """Every problem of the flags, the SHIM_* variables and the config file (not only the first)."""
    errors = []
    try:
        flag_raw, _ = options.parse_argv(argv)
    except options.HelpRequested:
        flag_raw = {}
    except ShimError as err:
        return [err]
    for name, raw in flag_raw.items():
        opt = options.BY_NAME[name]
        try:
            options.convert(opt, raw, opt.flags[0])
        except ShimError as err:
            errors.append(err)
    env_errors: list = []
    for name, raw in options.parse_environ(environ, env_errors).items():
        opt = options.BY_NAME[name]
        try:
            options.convert(opt, raw, opt.env)
        except ShimError as err:
            env_errors.append((opt.env, err))
    errors += [err for _, err in env_errors]
    path = flag_raw.get("config") or environ.get("SHIM_CONFIG")
    if path:
        file_errors: list = []
        try:
            doc = options.load_config_file(path)
        except ShimError as err:
            return errors + [err]
        profile = flag_raw.get("profile") or environ.get("SHIM_PROFILE") or None
        options.parse_config(doc, profile, file_errors)
        errors += [err for _, err in file_errors]
    if not errors:
        try:
            options.resolve(argv, environ)
        except ShimError as err:  # e.g. a profile for the runtime that is not there
            errors.append(err)
    return errors


def option_sources(config: "Config", argv: "list[str]", environ: "Mapping[str, str]") -> "list[dict[str, Any]]":
    """[{option, value, source, where}] for every option with a value: flag, env, config,
    profile or default, and exactly where (the flag, the variable, the JSON path)."""
    profile_keys = _profile_keys(config)
    rows = []
    for opt in options.OPTIONS:
        value = config.value(opt.name)
        layer = config.sources.get(opt.name, "default")
        if layer == "default" and value in (None, [], {}, False):
            continue  # not set, and nothing by default
        if layer == "flag":
            source, where = "flag", opt.flags[0]
        elif layer == "env":
            source, where = "env", opt.env
        elif layer == "file" and opt.name in profile_keys:
            source, where = "profile", f"$.profiles.{config.profile}.{opt.key}"
        elif layer in ("file", "detected"):
            source = "config" if layer == "file" else "detected"
            where = f"$.{opt.key}" if layer == "file" else "runtime markers"
        else:
            source, where = "default", "built-in default"
        rows.append({"option": opt.flags[0], "key": opt.key, "value": _shown_value(opt, value),
                     "source": source, "where": where})
    return rows


def _profile_keys(config):
    """Names of the options the chosen profile set (they are 'file' in config.sources)."""
    if not config.profile or not config.value("config"):
        return set()
    try:
        doc = options.load_config_file(config.value("config"))
        overlay = doc.get("profiles", {}).get(config.profile)
    except (ShimError, AttributeError):
        return set()
    if not isinstance(overlay, dict):
        return set()
    return set(options._parse_section(overlay, "$", [], top=False))


def _shown_value(opt, value):
    if opt.name in ENV_VALUES and isinstance(value, dict):
        return sorted(value)  # names only: a value may be a password
    if isinstance(value, str) and "://" in value:
        scheme = value.partition("ref+")[2].partition("://")[0] if value.startswith(("ref+", "secretref+")) else ""
        if scheme and scheme not in ("http", "https"):
            return value  # a reference as written (path, pointer, parameters): no secret in it
        from shim.run.waitfor import shown

        return shown(value)  # a URL may carry a credential in its userinfo or query
    if isinstance(value, list):
        return [_shown_value(opt, v) if isinstance(v, str) else v for v in value]
    if opt.kind == MAP and isinstance(value, dict):
        return {k: _shown_value(opt, v) if isinstance(v, str) else v for k, v in value.items()}
    return value


# -- environment ----------------------------------------------------------------------------
def environment(config: "Config", environ: "Mapping[str, str]", errors: "list[ShimError]") -> "tuple[Any, ...]":
    """(delegate env, {name: [steps]}, the sources' env, secret targets) without side effects."""
    from shim.run import envlayer, hygiene
    from shim.run.provenance import Trace

    trace = Trace()
    base = envlayer.inherited(environ)
    platform = {"SHIM_RUNTIME": config.detection.runtime}
    trace.platform(config, platform)
    p = config.platform
    if p.sagemaker_layout or p.hyperparameters_env is not None or p.hyperparameters_file or \
            p.hyperparameters_dir:
        trace.mark("*", "SageMaker contract (its names are known when the layout is written)")
    try:
        env = envlayer.build(dict(base, **platform), config, stop=lambda: None)
    except ShimError as err:
        errors.append(err)
        env = dict(base, **platform)
    trace.configured(config, dict(base, **platform))
    sources_env = dict(env)
    hygiene.scrub(env, config)
    trace.scrubbed(sources_env, env)
    targets = []
    from shim.run.pipeline import wants_secrets

    if wants_secrets(config, sources_env):
        from shim.run import secrets

        plan_errors: list = []
        targets = secrets.plan(config, env, plan_errors)
        errors += plan_errors
        trace.references(targets)
    return env, trace.steps, sources_env, targets


def env_diff(inherited: "Mapping[str, str]", env: "Mapping[str, str]", steps: "dict[str, Any]") -> "Any":
    """The diff of shim.run.provenance, plus the names references will set at run time."""
    from shim.run.provenance import diff

    found = diff(inherited, env, steps)
    found["resolved_at_run"] = [{"name": n, "steps": s} for n, s in sorted(steps.items())
                                if any(step.startswith("reference") for step in s)]
    return found


def reference(target: "Any") -> "dict[str, Any]":
    return {"for": target.where, "target": target.kind, "dest": target.dest,
            "refs": [i.ref.display() for i in target.items]}


# -- mode and delegate ------------------------------------------------------------------------
def mode(config: "Config", targets: "list", errors: "list[ShimError]") -> "tuple[str | None, list[str]]":
    from shim.run.pipeline import MASKING, choose_mode, resident_reasons

    masking = bool(targets) and config.logs.mask_secrets
    is_pid1 = os.getpid() == 1
    try:
        chosen = choose_mode(config, is_pid1, masking)
    except ShimError as err:
        errors.append(err)
        chosen = None
    reasons = resident_reasons(config, is_pid1, masking)
    if masking and MASKING not in reasons:
        reasons.append(MASKING)
    if chosen == "supervise" and not reasons:
        reasons = [config.source_of("mode")]
    return chosen, reasons


def delegate(config: "Config", env: "dict[str, str]", from_args: bool,
             errors: "list[ShimError]") -> "dict[str, Any]":
    from shim.run import delegate as d

    info: dict = {"argv": None, "found_by": None, "path": None}
    try:
        argv = d.command_from(config)
    except ShimError as err:
        errors.append(err)
        return info
    if config.command:
        info["found_by"] = "args after '--'" if from_args else "$.command of the config file"
    elif config.entrypoint is not None:
        info["found_by"] = config.source_of("entrypoint")
    else:
        info["found_by"] = f"image config ({config.source_of('image_entrypoint')})"
    mapped = d.by_first_word(argv, config.commands)
    if mapped is not argv:
        info["found_by"] += f", then the commands map ({argv[0]!s})"
    info["argv"] = mapped
    try:
        info["path"] = d.find_executable(mapped[0], env)
        info["lookup"] = "as given" if "/" in mapped[0] else "PATH lookup"
    except ShimError as err:
        info["lookup"] = err.cause
        errors.append(err)
    return info


# -- what else the run touches -----------------------------------------------------------------
def files(config: "Config", targets: "list") -> "list[dict[str, Any]]":
    out = []
    for t in targets:
        if t.kind in ("file", "dir"):
            out.append({"path": t.dest, "what": f"secret {t.kind} ({t.where})",
                        "mode": f"{t.mode:04o}" if isinstance(t.mode, int) else t.mode,
                        "owner": _owner(t.uid, t.gid)})
    for name, what in (("result_file", "result record"), ("termination_path", "termination message"),
                       ("post_file", "post file (or PATH.err)"), ("stdout_path", "stdout copy"),
                       ("stderr_path", "stderr copy")):
        try:
            path = config.value(name)
        except KeyError:
            continue
        if path:
            out.append({"path": path, "what": what, "mode": "0644", "owner": _owner(None, None)})
    if config.report.target and "://" not in config.report.target:
        out.append({"path": config.report.target, "what": "run report", "mode": "0644",
                    "owner": _owner(None, None)})
    d = config.debug
    if d.dir and (d.breakpoint_on_failure or d.breakpoint_before):
        for name in ("paused", "failed"):
            out.append({"path": os.path.join(d.dir, name), "what": "breakpoint", "mode": "0644",
                        "owner": _owner(None, None)})
    for item in getattr(config, "templates", None) or ():
        from shim.run.waitfor import shown

        source = item.get("source", "")
        out.append({"path": item.get("destination"),
                    "what": "template from " + (shown(source) if "://" in source else source),
                    "mode": item.get("mode") or "0400 if it holds a secret, else 0644",
                    "owner": item.get("owner") or _owner(None, None)})
    if config.platform.sagemaker_layout:
        out.append({"path": config.platform.sagemaker_root, "what": "SageMaker layout",
                    "mode": None, "owner": _owner(None, None)})
    return out


def _owner(uid, gid) -> str:
    return f"{os.getuid() if uid is None else uid}:{os.getgid() if gid is None else gid}"


def identity(config: "Config") -> "dict[str, Any]":
    """Who the delegate runs as: the identity options that are set, else shim's own user."""
    found = {"uid": os.getuid(), "gid": os.getgid()}
    for opt in options.OPTIONS:
        if opt.section == "identity" and config.sources.get(opt.name) != "default":
            found[opt.flags[0]] = config.value(opt.name)
    return found


def hooks(config: "Config") -> "dict[str, Any]":
    from shim.run.hooks import list_hooks

    out: dict = {}
    for phase, directory in (("pre", config.hooks.pre), ("post", config.hooks.post)):
        if not directory:
            continue
        try:
            out[phase] = list_hooks(directory)
        except ShimError as err:
            out[phase] = {"error": err.cause}
    return out


def waits(config: "Config") -> "dict[str, Any]":
    from shim.run import lifecycle
    from shim.run.waitfor import shown

    s = config.steps
    conditions = []
    try:
        conditions = [c.shown for c in lifecycle.plan(config, {})]
    except ShimError:
        conditions = [shown(u) for u in s.wait_for]
    return {"files": list(s.wait_files), "conditions": conditions, "timeout": s.wait_timeout,
            "breakpoint_before": config.debug.breakpoint_before}


SINK_SECTIONS = ("logs", "metrics", "heartbeat", "relay", "report")


def sinks(config: "Config") -> "dict[str, Any]":
    """Every set option of the streams and telemetry sections (URLs without credentials)."""
    from shim.run.waitfor import shown

    out = {}
    for opt in options.OPTIONS:
        if opt.section not in SINK_SECTIONS or config.sources.get(opt.name) == "default":
            continue
        value = config.value(opt.name)
        if isinstance(value, str) and "://" in value:
            value = shown(value)
        out[opt.flags[0]] = value
    return out


# -- --fetch ------------------------------------------------------------------------------------
def fetch_all(config: "Config", targets: "list", env: "dict[str, str]",
              errors: "list[ShimError]") -> "list[dict[str, Any]]":
    """Each reference once: status, latency, length and sha256 prefix (never the value)."""
    from shim.net.http import Client
    from shim.sources.base import Context
    from shim.sources.fetch import fetch_one

    settings = {}
    if config.secrets.vault_token_file:
        settings["vault_token_file"] = config.secrets.vault_token_file
    http = Client(env=env)
    # an empty --fetch-deadline= is None here (kinds._duration): the run path fails the same way
    ctx = Context(env, http, time.monotonic() + config.secrets.deadline, settings)  # type: ignore[operator]
    items: dict = {}
    for t in targets:
        for item in t.items:
            items.setdefault(item.ref, item)
    ctx.refs = tuple(items)
    rows = []
    for ref, item in items.items():
        start = time.monotonic()
        row = {"ref": ref.display(), "source": ref.source}
        try:
            value = fetch_one(ref, ctx)
        except Exception as err:  # SourceError, or anything unexpected: one line, no value
            cause = getattr(err, "cause", None) or f"{type(err).__name__}: {err}"
            row["status"] = status_of(err, cause)
            row["cause"] = cause
            if not (item.optional or (ref.tolerates_missing and row["status"] == "missing")):
                from shim.sources.fetch import fetch_error

                errors.append(fetch_error(item, cause))
        else:
            data = _bytes(value)
            row.update(status="ok", length=len(data), sha256=_sha256(data))
        row["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
        rows.append(row)
    http.close()
    return rows


DENIED_WORDS = ("http 401", "http 403", "permission denied", "access denied", "accessdenied",
                "forbidden", "unauthorized", "not authorized", "invalid token")


def status_of(err: BaseException, cause: str) -> str:
    if getattr(err, "missing", False):
        return "missing"
    text = cause.lower()
    if any(word in text for word in DENIED_WORDS):
        return "denied"
    return "unreachable"


def _bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    from shim.util import jsonio

    return jsonio.dumps(value)


def _sha256(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()[:HASH_PREFIX]


# -- text ----------------------------------------------------------------------------------------
def render_text(report: "dict[str, Any]") -> str:
    lines: list[str] = []
    add = lines.append
    if report.get("command") is None:
        add("configuration: invalid (errors on stderr)")
        return "\n".join(lines) + "\n"
    rt = report.get("runtime") or {}
    add(f"runtime: {rt.get('runtime')} ({rt.get('source')}: {'; '.join(rt.get('evidence') or [])})")
    add(f"mode: {report.get('mode')}" + (f" ({', '.join(report['mode_reasons'])})"
                                          if report.get("mode_reasons") else ""))
    dg = report.get("delegate") or {}
    add(f"delegate: {' '.join(dg.get('argv') or [])}")
    add(f"  found by: {dg.get('found_by')}; executable: {dg.get('path') or dg.get('lookup')}")
    add("options:")
    for row in report.get("options", []):
        add(f"  {row['option']} = {_text(row['value'])}  [{row['source']}: {row['where']}]")
    envd = report.get("environment", {})
    add("environment (names only, against what shim inherited):")
    for kind in ("added", "removed", "changed", "resolved_at_run"):
        for row in envd.get(kind, []):
            add(f"  {kind:8} {row['name']}  <- {'; '.join(row['steps'])}")
    if report.get("references"):
        add("references:")
        for ref in report["references"]:
            add(f"  {ref['for']} -> {', '.join(ref['refs'])}")
    for row in report.get("fetch", []):
        extra = (f"{row['length']} bytes, sha256 {row['sha256']}" if row["status"] == "ok"
                 else row.get("cause", ""))
        add(f"  fetch {row['ref']}: {row['status']} in {row['latency_ms']} ms ({extra})")
    if report.get("files"):
        add("files written:")
        for f in report["files"]:
            add(f"  {f['path']}  {f['what']}, mode {f['mode']}, owner {f['owner']}")
    ident = report.get("identity") or {}
    add("identity: " + ", ".join(f"{k} {_text(v)}" for k, v in ident.items()))
    for phase, found in (report.get("hooks") or {}).items():
        add(f"{phase}-hooks: {_text(found)}")
    w = report.get("wait") or {}
    if w.get("files") or w.get("conditions") or w.get("breakpoint_before"):
        add(f"wait: files {_text(w.get('files'))}, conditions {_text(w.get('conditions'))}, "
            f"timeout {w.get('timeout')}")
    if report.get("sinks"):
        add("sinks: " + ", ".join(f"{k} {_text(v)}" for k, v in report["sinks"].items()))
    add(f"exit code: {report.get('exit_code')}")
    return "\n".join(lines) + "\n"


def _text(value):
    if isinstance(value, (list, dict, bool)) or value is None:
        from shim.util import jsonio

        return jsonio.dumps(value).decode("utf-8")
    return str(value)

