"""Every option of `shim run`, in one table, and the layers that resolve it.

Each option is at once a command-line flag, a `SHIM_*` environment variable and
a key in the JSON config file.  Precedence: flag > environment > config file
(with the selected profile laid over it) > built-in default.  `resolve()` runs
once and returns an immutable `Config`.

Hand-written rather than argparse: one table has to drive four layers (flags,
environment, file, schema) and the run path must import almost nothing.
"""

from shim.errors import ShimError, usage_error

# -- kinds -------------------------------------------------------------------
STR, PATH, BOOL, DURATION, ENUM, LIST, MAP, JSON = (
    "str", "path", "bool", "duration", "enum", "list", "map", "json",
)

# Config sections that later capabilities fill in; accepted as objects today.
RESERVED_SECTIONS = ("secrets", "logs", "metrics", "heartbeat", "relay")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class Option:
    """One option: its flag(s), variable, config key, kind, default and help."""

    __slots__ = ("name", "flags", "env", "key", "kind", "default", "help",
                 "choices", "sep", "metavar", "value_kind", "flag_value")

    def __init__(self, name, flags, key, kind, default, help, choices=None,
                 sep="=", metavar=None, value_kind=STR, flag_value=None):
        self.name = name
        self.flags = flags
        self.env = "SHIM_" + name.upper()
        self.key = key
        self.kind = kind
        self.default = default
        self.help = help
        self.choices = choices
        self.sep = sep  # MAP: the separator of `--flag KEY<sep>VALUE`
        self.metavar = metavar or name.upper()
        self.value_kind = value_kind  # MAP: kind of values (STR or "int")
        self.flag_value = flag_value  # extra flags that set a fixed value


OPTIONS = (
    # general
    Option("config", ["--config"], None, PATH, None,
           "JSON config file (not itself a config key)", metavar="PATH"),
    Option("profile", ["--profile"], "profile", STR, None,
           "apply profiles.NAME of the config file over the file's values", metavar="NAME"),
    Option("log_level", ["--log-level"], "log_level", ENUM, "warn",
           "how much shim says on stderr", choices=("error", "warn", "info", "debug")),
    Option("entrypoint", ["--entrypoint"], "entrypoint", STR, None,
           "delegate command line when none follows '--' (shell-word split, never run by a shell)",
           metavar="CMDLINE"),
    Option("image_entrypoint", ["--image-entrypoint"], "image_entrypoint", JSON, None,
           "the image's recorded ENTRYPOINT/CMD as JSON (or @FILE), optionally per platform",
           metavar="JSON"),
    # supervise
    Option("mode", ["--mode"], "supervise.mode", ENUM, "auto",
           "exec the delegate (no resident shim) or supervise it; auto picks",
           choices=("auto", "exec", "supervise"),
           flag_value={"--exec": "exec", "--supervise": "supervise"}),
    Option("signal_group", ["--signal-group"], "supervise.signal_group", BOOL, False,
           "run the delegate in its own process group and signal the whole group"),
    Option("rewrite", ["--rewrite"], "supervise.rewrite", MAP, {},
           "forward signal FROM as TO (e.g. TERM:QUIT); repeatable", sep=":",
           metavar="FROM:TO"),
    Option("grace", ["--grace"], "supervise.grace", DURATION, 10.0,
           "after TERM (timeout, cancel, leftover descendants), wait this long before KILL"),
    Option("timeout", ["--timeout"], "supervise.timeout", DURATION, None,
           "terminate the delegate after this long (exit 124, reason timeout)"),
    Option("exit_remap", ["--exit-remap"], "supervise.exit_remap", MAP, {},
           "map the delegate's exit code FROM to TO (e.g. 143:0); repeatable", sep=":",
           metavar="FROM:TO", value_kind="int"),
    Option("subreaper", ["--subreaper"], "supervise.subreaper", BOOL, True,
           "when not PID 1, become a child subreaper so orphans are reaped (--no-subreaper)"),
    # env
    Option("env", ["--env", "-e"], "env.set", MAP, {},
           "set NAME=VALUE in the delegate's environment; repeatable", metavar="NAME=VALUE"),
    Option("default_env", ["--default-env"], "env.default", MAP, {},
           "set NAME=VALUE only if NAME is unset; repeatable", metavar="NAME=VALUE"),
    Option("prepend_env", ["--prepend-env"], "env.prepend", MAP, {},
           "prepend VALUE to the ':'-list NAME (PATH-like); repeatable", metavar="NAME=VALUE"),
    Option("append_env", ["--append-env"], "env.append", MAP, {},
           "append VALUE to the ':'-list NAME; repeatable", metavar="NAME=VALUE"),
    Option("unset_env", ["--unset-env"], "env.unset", LIST, [],
           "remove NAME from the delegate's environment; repeatable", metavar="NAME"),
    Option("env_file", ["--env-file"], "env.files", LIST, [],
           "read NAME=VALUE lines (dotenv syntax); repeatable", metavar="PATH"),
    # steps
    Option("wait_file", ["--wait-file"], "steps.wait_files", LIST, [],
           "start only when PATH exists; skip (exit 121) if PATH.err appears; repeatable",
           metavar="PATH"),
    Option("wait_timeout", ["--wait-timeout"], "steps.wait_timeout", DURATION, None,
           "give up waiting after this long (exit 123)"),
    Option("post_file", ["--post-file"], "steps.post_file", PATH, None,
           "write PATH after success, PATH.err after failure", metavar="PATH"),
    Option("cancel_file", ["--cancel-file"], "steps.cancel_file", PATH, None,
           "when PATH appears, terminate the delegate (exit 120)", metavar="PATH"),
    Option("on_error", ["--on-error"], "steps.on_error", ENUM, "stop",
           "continue: exit 0 after a failed delegate but record its code",
           choices=("stop", "continue")),
    Option("poll_interval", ["--poll-interval"], "steps.poll_interval", DURATION, 0.1,
           "how often to check cancel files and, without inotify, wait files"),
    # hooks
    Option("pre_hooks", ["--pre-hooks"], "hooks.pre", PATH, None,
           "run the executables in DIR, in name order, before the delegate", metavar="DIR"),
    Option("post_hooks", ["--post-hooks"], "hooks.post", PATH, None,
           "run the executables in DIR after the delegate (SHIM_EXIT_CODE, SHIM_REASON set)",
           metavar="DIR"),
    Option("hook_timeout", ["--hook-timeout"], "hooks.timeout", DURATION, 60.0,
           "terminate a hook that runs longer than this"),
    Option("hook_failure", ["--hook-failure"], "hooks.failure", ENUM, "abort",
           "what a failed hook does: abort the run (exit 122) or warn",
           choices=("abort", "warn")),
    # results
    Option("result_file", ["--result-file"], "results.file", PATH, None,
           "write the JSON result record to PATH (atomically)", metavar="PATH"),
    Option("termination_path", ["--termination-path"], "results.termination_path", PATH, None,
           "write the record, capped at 4096 bytes, for Kubernetes' terminationMessagePath",
           metavar="PATH"),
    Option("results_dir", ["--results-dir"], "results.dir", PATH, None,
           "include each file of DIR as a named result in the record", metavar="DIR"),
)

BY_NAME = {opt.name: opt for opt in OPTIONS}
BY_FLAG = {}
for _opt in OPTIONS:
    for _flag in _opt.flags:
        BY_FLAG[_flag] = _opt
    for _flag in (_opt.flag_value or {}):
        BY_FLAG[_flag] = _opt
    if _opt.kind == BOOL:
        BY_FLAG["--no-" + _opt.flags[0][2:]] = _opt
BY_KEY = {opt.key: opt for opt in OPTIONS if opt.key}


class Config:
    """The resolved, immutable settings of one run (attribute per option)."""

    __slots__ = ("_values", "command", "sources")

    def __init__(self, values, command, sources):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "command", tuple(command))
        object.__setattr__(self, "sources", dict(sources))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("Config is immutable")

    def as_dict(self):
        return dict(self._values)


# -- durations -----------------------------------------------------------------
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_HELP = "write a duration as 500ms, 10s, 2m, 1h, 1m30s, or plain seconds"


def parse_duration(text):
    """'500ms' -> 0.5, '1m30s' -> 90.0, '2' -> 2.0; raises ValueError."""
    if isinstance(text, bool):
        raise ValueError("not a duration")
    if isinstance(text, (int, float)):
        if not 0 <= text < float("inf"):  # also rejects NaN
            raise ValueError("not a finite non-negative number")
        return float(text)
    if not isinstance(text, str):
        raise ValueError("not a duration")
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value < 0 or value != value or value == float("inf"):
            raise ValueError("not a finite non-negative number")
        return value
    total, i, n = 0.0, 0, len(s)
    while i < n:
        j = i
        while j < n and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < n and s[k].isalpha():
            k += 1
        number, unit = s[i:j], s[j:k]
        if not number or unit not in _UNITS or number.count(".") > 1 or not number.strip("."):
            raise ValueError(f"cannot read {text!r}")
        if not number.isascii():
            raise ValueError(f"cannot read {text!r}")
        total += float(number) * _UNITS[unit]
        i = k
    return total


# -- converting one raw value ------------------------------------------------
def convert(opt, raw, where):
    """Turn a raw value from any layer into the option's typed value.

    `where` names the object for errors: '--grace', 'SHIM_GRACE' or '$.supervise.grace'.
    """
    kind = opt.kind
    if kind in (STR, PATH):
        if not isinstance(raw, str):
            raise usage_error(where, f"expected a string, got {_jsontype(raw)}", "quote the value")
        if kind == PATH and raw == "":
            raise usage_error(where, "empty path", "give a path or drop the option")
        if "\x00" in raw:
            raise usage_error(where, "contains a NUL byte", "remove it")
        return raw
    if kind == BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise usage_error(where, f"expected true or false, got {_show(raw)}", "use true/false or 1/0")
    if kind == DURATION:
        if raw is None or raw == "":
            return None
        try:
            return parse_duration(raw)
        except (ValueError, TypeError, OverflowError):
            raise usage_error(where, f"invalid duration {_show(raw)}", DURATION_HELP) from None
    if kind == ENUM:
        if raw not in opt.choices:
            raise usage_error(where, f"invalid value {_show(raw)}",
                              "use one of " + ", ".join(opt.choices))
        return raw
    if kind == LIST:
        if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
            raise usage_error(where, "expected a list of non-empty strings", 'write ["a", "b"]')
        return list(raw)
    if kind == MAP:
        return _convert_map(opt, raw, where)
    if kind == JSON:
        return _convert_json(raw, where)
    raise AssertionError(kind)


def _convert_map(opt, raw, where):
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):  # ["K=V", ...] from flags or env
        pairs = {}
        for item in raw:
            if not isinstance(item, str) or opt.sep not in item:
                raise usage_error(where, f"expected KEY{opt.sep}VALUE, got {_show(item)}",
                                  f"write it as {opt.metavar}")
            k, v = item.split(opt.sep, 1)
            pairs[k] = v
        raw = pairs
    if not isinstance(raw, dict):
        raise usage_error(where, f"expected an object, got {_jsontype(raw)}",
                          'write {"KEY": "VALUE"}')
    out = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k:
            raise usage_error(where, "empty key", f"write it as {opt.metavar}")
        if opt.name in ("rewrite",):
            out[_signal_number(k, where)] = _signal_number(v, where)
        elif opt.value_kind == "int":
            out[_exit_code(k, where)] = _exit_code(v, where)
        else:
            if opt.name != "rewrite" and ("=" in k or "\x00" in k):
                raise usage_error(where, f"invalid variable name {_show(k)}",
                                  "names cannot contain '=' or NUL")
            if not isinstance(v, str) or "\x00" in v:
                raise usage_error(where, f"value of {k} must be a string without NUL",
                                  "quote the value")
            out[k] = v
    return out


def _exit_code(value, where):
    try:
        if isinstance(value, bool):
            raise ValueError
        code = int(value)
    except (TypeError, ValueError):
        raise usage_error(where, f"invalid exit code {_show(value)}", "use 0 to 255") from None
    if not 0 <= code <= 255:
        raise usage_error(where, f"exit code {code} out of range", "use 0 to 255")
    return code


def _signal_number(value, where):
    import signal

    text = str(value).strip().upper()
    if text.isdigit():
        num = int(text)
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        num = getattr(signal, name, None)
        num = int(num) if num is not None else None
    if num is None or num not in {int(s) for s in signal.valid_signals()} or \
            num in (signal.SIGKILL, signal.SIGSTOP):
        raise usage_error(where, f"unknown or uncatchable signal {_show(value)}",
                          "use a name like TERM, QUIT, USR1 or a number")
    return num


def _convert_json(raw, where):
    if isinstance(raw, str):
        text = raw
        if text.startswith("@"):
            path = text[1:]
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise ShimError("read", f"{where} file {path}", _oserror(err),
                                "check the path and its permissions") from None
        from shim.util import jsonio

        try:
            raw = jsonio.loads(text)
        except ValueError as err:
            raise usage_error(where, f"malformed JSON ({err})", "check the quoting") from None
    if not isinstance(raw, (dict, list)):
        raise usage_error(where, f"expected a JSON object or array, got {_jsontype(raw)}",
                          'write {"Entrypoint": [...], "Cmd": [...]}')
    return raw


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsontype(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _oserror(err):
    return (err.strerror or str(err)).lower() if isinstance(err, OSError) else str(err)


# -- layer 1: the command line -----------------------------------------------
def parse_argv(argv):
    """Split argv into ({name: value}, command).  Options stop at '--' or the first word."""
    values, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return values, list(argv[i + 1:])
        if arg in ("-h", "--help"):
            raise HelpRequested()
        if not arg.startswith("-") or arg == "-":
            return values, list(argv[i:])
        flag, eq, inline = arg.partition("=")
        opt = BY_FLAG.get(flag)
        if opt is None:
            raise usage_error(f"option {flag}", "unknown option",
                              "run 'shim --help' for the list, and put the command after '--'")
        if opt.flag_value and flag in opt.flag_value:
            values[opt.name] = opt.flag_value[flag]
            i += 1
            continue
        if opt.kind == BOOL:
            if eq:
                values[opt.name] = convert(opt, inline, flag)
            else:
                values[opt.name] = not flag.startswith("--no-")
            i += 1
            continue
        if eq:
            raw = inline
            i += 1
        else:
            if i + 1 >= len(argv):
                raise usage_error(f"option {flag}", "missing value", f"write {flag} {opt.metavar}")
            raw = argv[i + 1]
            i += 2
        if opt.kind in (LIST, MAP):
            values.setdefault(opt.name, []).append(raw)
        else:
            values[opt.name] = raw
    return values, []


class HelpRequested(Exception):
    """`--help` was given: print `render_help()` and exit 0."""


def _typed(layer, where_of):
    return {name: convert(BY_NAME[name], raw, where_of(BY_NAME[name]))
            for name, raw in layer.items()}


# -- layer 2: the environment ------------------------------------------------
def parse_environ(environ):
    """{name: raw} from SHIM_* variables.  LIST/MAP take JSON or comma-separated items."""
    values = {}
    for opt in OPTIONS:
        if opt.env not in environ:
            continue
        raw = environ[opt.env]
        if opt.kind in (LIST, MAP):
            raw = _split_env_list(opt, raw)
        elif opt.kind in (STR, PATH, ENUM, DURATION) and raw == "" and opt.name != "entrypoint":
            continue  # an empty variable means "not set", as in most tools
        values[opt.name] = raw
    return values


def _split_env_list(opt, raw):
    text = raw.strip()
    if text.startswith("[") or text.startswith("{"):
        from shim.util import jsonio

        try:
            return jsonio.loads(text)
        except ValueError as err:
            raise usage_error(opt.env, f"malformed JSON ({err})", "check the quoting") from None
    return [item for item in (x.strip() for x in text.split(",")) if item]


# -- layer 3: the config file --------------------------------------------------
def load_config_file(path):
    from shim.util import jsonio

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ShimError("read config", path, _oserror(err),
                        "check the path given by --config or SHIM_CONFIG") from None
    try:
        return jsonio.loads(data)
    except ValueError as err:
        raise usage_error(f"config {path}", f"malformed JSON ({err})",
                          "fix the file; 'shim check --config PATH' lists every error") from None


def parse_config(doc, profile=None, errors=None):
    """{name: typed value} from a config document, with profile `profile` laid over it.

    With `errors` (a list), every problem is appended as (json_path, ShimError) and
    parsing goes on; without it the first problem is raised.
    """
    if not isinstance(doc, dict):
        return _fail(errors, "$", usage_error("config", "expected a JSON object at the top",
                                              "write {\"supervise\": {...}, ...}"), {})
    values = _parse_section(doc, "$", errors, top=True)
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict):
        _fail(errors, "$.profiles", usage_error("$.profiles", "expected an object",
                                                "write {\"NAME\": {...}}"), None)
        profiles = {}
    for name, overlay in profiles.items():  # validate every profile, apply the chosen one
        where = f"$.profiles.{name}"
        if not isinstance(overlay, dict):
            _fail(errors, where, usage_error(where, "expected an object", "write {...}"), None)
            continue
        layer = _parse_section(overlay, where, errors, top=False)
        if name == (profile or values.get("profile")):
            values.update(layer)
    wanted = profile or values.get("profile")
    if wanted and wanted not in profiles:
        _fail(errors, "$.profiles", usage_error(
            "profile", f"{wanted!r} is not defined in the config file",
            "add it under \"profiles\" or drop --profile/SHIM_PROFILE"), None)
    return values


def _parse_section(doc, base, errors, top):
    values = {}
    for key, raw in doc.items():
        path = f"{base}.{key}"
        if top and key == "profiles":
            continue
        if key == "command" and top:
            if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
                _fail(errors, path, usage_error(path, "expected a non-empty array of strings",
                                                'write ["cmd", "arg"]'), None)
            else:
                values["command"] = list(raw)
            continue
        if key in RESERVED_SECTIONS:
            if not isinstance(raw, dict):
                _fail(errors, path, usage_error(path, "expected an object", "write {...}"), None)
            continue
        if key in _SECTIONS and isinstance(raw, dict):
            for sub, subraw in raw.items():
                _one(values, f"{key}.{sub}", subraw, f"{path}.{sub}", errors)
            continue
        _one(values, key, raw, path, errors)
    return values


_SECTIONS = {key.split(".")[0] for key in BY_KEY if "." in key}


def _one(values, key, raw, path, errors):
    opt = BY_KEY.get(key)
    if opt is None:
        section, dot, _ = key.partition(".")
        if dot:
            known = sorted(k.split(".", 1)[1] for k in BY_KEY if k.startswith(section + "."))
            fix = f"known keys of {section}: " + ", ".join(known)
        else:
            known = sorted({k.split(".")[0] for k in BY_KEY} | set(RESERVED_SECTIONS) |
                           {"command", "profiles"})
            fix = "known top-level keys: " + ", ".join(known)
        return _fail(errors, path, usage_error(path, "unknown key", fix), None)
    try:
        if opt.kind == MAP and not isinstance(raw, dict):  # in a file, a map is an object
            raise usage_error(path, f"expected an object, got {_jsontype(raw)}",
                              'write {"KEY": "VALUE"}')
        values[opt.name] = convert(opt, raw, path)
    except ShimError as err:
        _fail(errors, path, err, None)


def _fail(errors, path, err, result):
    if errors is None:
        raise err
    errors.append((path, err))
    return result


# -- resolve all layers ----------------------------------------------------------
def resolve(argv, environ):
    """Resolve flag > environment > file (+profile) > default into one Config."""
    flag_raw, command = parse_argv(argv)
    env_raw = parse_environ(environ)
    flags = _typed(flag_raw, lambda o: o.flags[0])
    env = _typed(env_raw, lambda o: o.env)
    config_path = flags.get("config") or env.get("config")
    file_values = {}
    if config_path:
        profile = flags.get("profile") or env.get("profile")
        file_values = parse_config(load_config_file(config_path), profile)
    file_command = file_values.pop("command", None)
    values, sources = {}, {}
    for opt in OPTIONS:
        for layer_name, layer in (("flag", flags), ("env", env), ("file", file_values)):
            if opt.name in layer:
                values[opt.name], sources[opt.name] = layer[opt.name], layer_name
                break
        else:
            values[opt.name] = _copy(opt.default)
            sources[opt.name] = "default"
    return Config(values, command or file_command or [], sources)


def _copy(value):
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) \
        else value


# -- help --------------------------------------------------------------------
USAGE = "usage: shim [OPTIONS] [--] COMMAND [ARGS...]\n       shim version | check [--config PATH] | install DIR"


def render_help():
    lines = [USAGE, "", "options (flag / environment variable / config key):"]
    for opt in OPTIONS:
        flags = ", ".join(opt.flags + list(opt.flag_value or {}))
        if opt.kind != BOOL:
            flags += f" {opt.metavar}"
        lines.append(f"  {flags}")
        lines.append(f"      {opt.help}")
        lines.append(f"      env {opt.env}" + (f", key {opt.key}" if opt.key else "") +
                     (f", default {_fmt_default(opt)}" if opt.default not in (None, [], {}) else ""))
    lines.append("")
    lines.append("exit codes: the delegate's own; 128+n if killed by signal n; 127 not found;")
    lines.append("126 not executable; 125 usage; 124 timeout; 123 wait timeout; 122 hook failed;")
    lines.append("121 skipped; 120 cancelled; 119 internal error; 118 setup error.")
    return "\n".join(lines) + "\n"


def _fmt_default(opt):
    if opt.kind == DURATION:
        v = opt.default
        return f"{int(v * 1000)}ms" if v < 1 else f"{v:g}s"
    if opt.kind == BOOL:
        return "true" if opt.default else "false"
    return str(opt.default)


def environ_name(name):
    return BY_NAME[name].env
