"""Every option of `shim run`, and the layers that resolve it.

Each option is at once a command-line flag, a `SHIM_*` environment variable and
a key in the JSON config file.  Precedence: flag > environment > config file
(with the selected profile laid over it) > built-in default.  `resolve()` runs
once and returns an immutable `Config`: top-level options are its attributes,
each section is an immutable settings object (`config.supervise.grace`).

Hand-written rather than argparse: one table has to drive four layers (flags,
environment, file, schema) and the run path must import almost nothing.
"""

from shim.config.kinds import convert, jsontype, oserror, show
from shim.config.option import (
    BOOL,
    DURATION,
    LIST,
    MAP_KINDS,
    REPEATABLE,
    HelpRequested,  # noqa: F401  (raised here, caught by the pipeline)
)
from shim.config.table import MODULES, UNSUPPORTED_SECTIONS
from shim.errors import ShimError, usage_error

OPTIONS = tuple(opt for module in MODULES for opt in module.OPTIONS)
SECTIONS = tuple(module.SECTION for module in MODULES if module.SECTION)

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


class Settings:
    """The immutable, typed settings of one config section (attribute per key)."""

    __slots__ = ("_section", "_values")

    def __init__(self, section, values):
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._section}.{name}") from None

    def __setattr__(self, name, value):
        raise AttributeError("settings are immutable")

    def __repr__(self):
        return f"Settings({self._section})"


class Config:
    """The resolved, immutable settings of one run.

    `config.log_level` (top-level options), `config.supervise.grace` (sections),
    `config.command` (argv after '--' or the file's command) and `config.sources`
    (option name -> flag|env|file|default, for messages).
    """

    __slots__ = ("_top", "command", "sources", "detection")

    def __init__(self, values, command, sources, detection=None):
        top: dict[str, object] = {}
        sections: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}
        for name, value in values.items():
            opt = BY_NAME[name]
            (sections[opt.section] if opt.section else top)[opt.attr] = value
        for name, attrs in sections.items():
            top[name] = Settings(name, attrs)
        object.__setattr__(self, "_top", top)
        object.__setattr__(self, "command", tuple(command))
        object.__setattr__(self, "sources", dict(sources))
        object.__setattr__(self, "detection", detection)  # the runtime decision and its evidence

    def __getattr__(self, name):
        try:
            return self._top[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("Config is immutable")

    def value(self, name):
        """The value of option `name` (its table name, e.g. "post_hooks")."""
        opt = BY_NAME[name]
        return getattr(self._top[opt.section], opt.attr) if opt.section else self._top[opt.attr]

    def source_of(self, name):
        """Where option `name`'s value came from, as the user wrote it: '--x', 'SHIM_X', file."""
        opt = BY_NAME[name]
        layer = self.sources.get(name)
        return {"flag": opt.flags[0], "env": opt.env, "file": f"$.{opt.key}"}.get(layer, opt.flags[0])


# -- layer 1: the command line -----------------------------------------------
def parse_argv(argv):
    """Split argv into ({name: value}, command).  Options stop at '--' or the first word."""
    values: dict = {}  # name -> raw string, or a list of them for repeatable options
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return values, list(argv[i + 1:])
        if arg in ("-h", "--help", "--help-all"):
            raise HelpRequested(full=arg == "--help-all")
        if not arg.startswith("-") or arg == "-":
            return values, list(argv[i:])
        flag, eq, inline = arg.partition("=")
        opt = BY_FLAG.get(flag)
        if opt is None:
            raise usage_error(f"option {flag}", "unknown option",
                              "run 'shim --help' for the list, and put the command after '--'")
        if opt.flag_value and flag in opt.flag_value:
            if eq:  # `--exec=no` must not quietly mean --exec
                raise usage_error(f"option {flag}", f"takes no value (got {show(inline)})",
                                  f"write {flag} alone, or --{opt.name} "
                                  + "|".join(opt.choices))
            values[opt.name] = opt.flag_value[flag]
            i += 1
            continue
        if opt.kind == BOOL:
            if eq:
                values[opt.name] = convert(opt, inline, flag)
            else:
                # Only the generated --no-X negates (--no-new-privileges is itself a flag).
                values[opt.name] = flag != "--no-" + opt.flags[0][2:] or flag in opt.flags
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
        if opt.kind in REPEATABLE:
            values.setdefault(opt.name, []).append(raw)
        else:
            values[opt.name] = raw
    return values, []


def _typed(layer, where_of):
    return {name: convert(BY_NAME[name], raw, where_of(BY_NAME[name]))
            for name, raw in layer.items()}


# -- layer 2: the environment ------------------------------------------------
def parse_environ(environ, errors=None):
    """{name: raw} from SHIM_* variables.  LIST/MAP take JSON or comma-separated items.

    With `errors` (a list), each bad variable is appended as (name, ShimError) and
    the others are still read; without it the first problem is raised.
    """
    values = {}
    for opt in OPTIONS:
        if opt.env not in environ:
            continue
        raw = environ[opt.env]
        if raw == "" and opt.name != "entrypoint":
            continue  # an empty variable means "not set", as in most tools
        if opt.kind in REPEATABLE:
            try:
                raw = _split_env_list(opt, raw)
            except ShimError as err:
                _fail(errors, opt.env, err, None)
                continue
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
        raise ShimError("read config", path, oserror(err),
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
            "profile", f"{show(wanted)} is not defined in the config file",
            "add it under \"profiles\" or drop --profile/SHIM_PROFILE"), None)
    return values


def _parse_section(doc, base, errors, top):
    """Typed values of one document level (the file's top, or one profile: same shape)."""
    values = {}
    for key, raw in doc.items():
        path = f"{base}.{key}"
        if key == "profiles":
            if not top:
                _fail(errors, path, usage_error(path, "profiles cannot be nested",
                                                "move the profile to the top-level profiles"), None)
            continue
        if key == "command":
            if not isinstance(raw, list) or not raw or \
                    not all(isinstance(x, str) and "\x00" not in x for x in raw):
                _fail(errors, path, usage_error(path, "expected a non-empty array of strings "
                                                "without NUL bytes", 'write ["cmd", "arg"]'), None)
            else:
                values["command"] = list(raw)
            continue
        if key in UNSUPPORTED_SECTIONS:
            from shim import __version__

            _fail(errors, path, usage_error(path, f"section {key} is not supported by this "
                                            f"version of shim ({__version__})",
                                            "remove it, or use a shim that has it"), None)
            continue
        if key == "secrets" and isinstance(raw, list):
            raw = {"items": raw}  # the short form: the section is its item list
        if key in SECTIONS:
            if not isinstance(raw, dict):
                _fail(errors, path, usage_error(path, f"section {key} must be an object, got "
                                                f"{jsontype(raw)}", f'write "{key}": {{...}}'), None)
                continue
            for sub, subraw in raw.items():
                _one(values, f"{key}.{sub}", subraw, f"{path}.{sub}", errors)
            continue
        _one(values, key, raw, path, errors)
    return values


def _one(values, key, raw, path, errors):
    opt = BY_KEY.get(key)
    if opt is None:
        section, dot, _ = key.partition(".")
        if dot:
            known = sorted(k.split(".", 1)[1] for k in BY_KEY if k.startswith(section + "."))
            fix = f"known keys of {section}: " + ", ".join(known)
        else:
            known = sorted({k for k in BY_KEY if "." not in k} | set(SECTIONS) |
                           {"command", "profiles"})
            fix = "known top-level keys: " + ", ".join(known)
        return _fail(errors, path, usage_error(path, "unknown key", fix), None)
    try:
        if opt.kind in MAP_KINDS and not isinstance(raw, dict):  # in a file, a map is an object
            raise usage_error(path, f"expected an object, got {jsontype(raw)}",
                              'write {"KEY": "VALUE"}')
        if opt.kind == LIST and not isinstance(raw, list):
            raise usage_error(path, f"expected an array, got {jsontype(raw)}", 'write ["a", "b"]')
        values[opt.name] = convert(opt, raw, path)
    except ShimError as err:
        _fail(errors, path, err, None)


def _fail(errors, path, err, result):
    if errors is None:
        raise err
    errors.append((path, err))
    return result


# Options whose keys are paths (secret files and directories written for the delegate).
PATH_KEYED = ("secret_file", "secret_dir")


def anchored(config, cwd):
    """The same settings with relative paths made absolute against `cwd`.

    The resident shim leaves its start directory once the delegate runs (so it keeps no
    volume busy); a relative --post-file or --secret-file still means the start directory.
    """
    import os

    def at(path):
        return os.path.join(cwd, path) if isinstance(path, str) and path else path

    def items_at(items, keys):  # template and secret items: their file paths, not references
        return [dict(item, **{k: at(item[k]) for k in keys if isinstance(item.get(k), str) and
                              "://" not in item[k] and not item[k].startswith("ref+")})
                if isinstance(item, dict) else item for item in items]

    values = {}
    for opt in OPTIONS:
        value = config.value(opt.name)
        if opt.kind == "path" and isinstance(value, str) and not os.path.isabs(value):
            value = at(value)
        elif opt.name in PATH_KEYED and value:
            value = {at(key): ref for key, ref in value.items()}
        elif opt.kind == "template_list" and isinstance(value, list):
            value = items_at(value, ("source", "destination"))
        elif opt.name == "secret_items" and isinstance(value, list):
            value = items_at(value, ("file", "dir"))
        elif opt.name == "report" and isinstance(value, str) and "://" not in value:
            value = at(value)  # written at exit (a URL is posted instead)
        values[opt.name] = value
    return Config(values, config.command, config.sources, config.detection)


# -- resolve all layers ----------------------------------------------------------
def resolve(argv, environ):
    """Resolve flag > environment > file (+profile) > default into one Config."""
    flag_raw, command = parse_argv(argv)
    env_raw = parse_environ(environ)
    flags = _typed(flag_raw, lambda o: o.flags[0])
    env = _typed(env_raw, lambda o: o.env)
    config_path = flags.get("config") or env.get("config")
    doc = load_config_file(config_path) if config_path else None
    detection = _detect(flags, env, doc, environ, command)
    file_values = {}
    if config_path:
        # An explicit --profile wins; else the runtime's profile; else the file's own "profile".
        profile = flags.get("profile") or env.get("profile") or \
            _profile_for(detection.runtime, doc.get("profiles") if isinstance(doc, dict) else None)
        file_values = parse_config(doc, profile)
        if profile:
            file_values["profile"] = profile
    file_command = file_values.pop("command", None)
    # The runtime was decided before the file was read (it picks the profile): keep that.
    runtime_layer = next((name for name, values in (("flag", flags), ("env", env)) if "runtime" in values),
                         "file" if detection.source == "override" else "detected")
    values, sources = {"runtime": detection.runtime}, {"runtime": runtime_layer}
    for opt in OPTIONS:
        if opt.name in values:
            continue
        for layer_name, layer in (("flag", flags), ("env", env), ("file", file_values)):
            if opt.name in layer:
                values[opt.name], sources[opt.name] = layer[opt.name], layer_name
                break
        else:
            values[opt.name] = _copy(opt.default)
            sources[opt.name] = "default"
    return Config(values, command or file_command or [], sources, detection)


def _detect(flags, env, doc, environ, command):
    """Which platform runs us: --runtime / SHIM_RUNTIME / the file's platform.runtime, else
    the documented markers (before the file's values: the runtime picks the profile)."""
    from shim.platform import detect

    section = doc.get("platform") if isinstance(doc, dict) else None
    section = section if isinstance(section, dict) else {}
    override = flags.get("runtime") or env.get("runtime") or \
        (section.get("runtime") if section.get("runtime") in detect.RUNTIMES else None)
    root = flags.get("sagemaker_root") or env.get("sagemaker_root") or \
        (section.get("sagemaker_root") if isinstance(section.get("sagemaker_root"), str) else "/")
    return detect.for_config(override, environ, command[0] if command else None, root)


def _profile_for(runtime, profiles):
    from shim.platform.detect import profile_for

    return profile_for(runtime, profiles)


def _copy(value):
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) \
        else value


# -- help --------------------------------------------------------------------
USAGE = ("usage: shim [OPTIONS] [--] COMMAND [ARGS...]\n"
         "       shim version | check [--config PATH] | install DIR | detect [--runtime NAME]\n"
         "       shim exec-env [OPTIONS] -- COMMAND [ARGS...]\n"
         "       shim explain [--format json] [--fetch] [OPTIONS] -- COMMAND [ARGS...]\n"
         "       shim doctor [--format json] [OPTIONS]\n"
         "       shim k8s inject|webhook|lint ... | shim dockerfile wrap ...   "
         "(platform tooling: `shim k8s --help`)")


def render_help(full=False):
    """--help: the most used options, then the capabilities by name; --help-all: every
    option, grouped by capability (shim.config.capabilities, the one registry)."""
    from shim.config.capabilities import CAPABILITIES, MOST_USED

    lines = [USAGE, ""]
    if not full:
        lines.append("most used options (flag / environment variable / config key):")
        lines += [line for name in MOST_USED for line in _help_lines(BY_NAME[name])]
        lines += ["", "capabilities (every option of each: shim --help-all):"]
        width = max(len(cap.name) for cap in CAPABILITIES)
        lines += [f"  {cap.name:<{width}}  {cap.summary}" for cap in CAPABILITIES]
    else:
        lines.append("options by capability (flag / environment variable / config key):")
        for cap in CAPABILITIES:
            lines += ["", f"{cap.name}: {cap.summary}"]
            lines += [line for name in cap.options for line in _help_lines(BY_NAME[name])]
    lines += ["", "Every option is also a SHIM_* variable and a config-file key; "
              "precedence: flag > variable > file > default.", ""]
    lines += _exit_code_lines()
    return "\n".join(lines) + "\n"


def _help_lines(opt):
    flags = ", ".join(opt.flags + list(opt.flag_value or {}))
    if opt.kind != BOOL:
        flags += f" {opt.metavar}"
    return [f"  {flags}", f"      {opt.help}",
            f"      env {opt.env}" + (f", key {opt.key}" if opt.key else "") +
            (f", default {_fmt_default(opt)}" if opt.default not in (None, [], {}) else "")]


def _exit_code_lines():
    """Every shim exit code, from shim.errors (the one list; the README's table matches)."""
    from shim import errors

    codes = sorted(((code, reason) for reason, code in errors.REASON_CODES.items()), reverse=True)
    text = ("exit codes: the delegate's own; 128+n if killed by signal n; " +
            "; ".join(f"{code} {what}" for code, what in codes) + ".")
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > 96:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def _fmt_default(opt):
    if opt.kind == DURATION:
        v = opt.default
        return f"{int(v * 1000)}ms" if v < 1 else f"{v:g}s"
    if opt.kind == BOOL:
        return "true" if opt.default else "false"
    return str(opt.default)
