"""Pipeline step `secrets`: fetch every reference, then put the values where the code reads them.

    plan (parse every reference: a malformed one is exit 125 before any request)
      -> fetch_all (concurrent, one deadline, fail closed: exit 117)
      -> variables (--secret, --secret-env-prefix, --env-from, references in the environment)
      -> files and directories (--secret-file, --secret-dir; atomic, 0400)

Nothing is written and no variable is set unless every non-optional reference resolved.
Hygiene (shim's own credentials never reach the delegate) is shim.run.hygiene, run always.
`--refresh` and its change actions are shim.run.refresh (a service on the resident loop).
This module is imported only when a run has something to fetch.
"""

import os

from shim.errors import REASON_INTERRUPTED, REASON_SETUP, ShimError, usage_error
from shim.sources.fetch import Result
from shim.util.text import show
from shim.util.urlcode import is_name

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.config.options import Config
    from shim.util.mask import Masker

DEFAULT_MODE = 0o400
TARGET_KEYS = ("env", "env_prefix", "file", "dir", "env_from")
ENV_KINDS = ("env", "env_prefix", "env_from")
FILE_KINDS = ("file", "dir")


class Target:
    """One destination: kind (env, env_prefix, env_from, file, dir), dest (name, prefix or
    path), the fetch Item, file mode and owner, and `where` it was configured.

    `compose`: a text with references inside (shim.sources.embedded.Composite) whose
    `items` are fetched one by one; `item` is then the first of them (for messages)."""

    __slots__ = ("kind", "dest", "item", "mode", "uid", "gid", "where", "compose", "items")

    def __init__(self, kind, dest, item, where, mode=DEFAULT_MODE, uid=None, gid=None,
                 compose=None, items=None):
        self.kind, self.dest, self.item, self.where = kind, dest, item, where
        self.mode, self.uid, self.gid = mode, uid, gid
        self.compose, self.items = compose, items or [item]


# -- plan ----------------------------------------------------------------------------------
def plan(config: "Config", env: "Mapping[str, str]", errors: "list | None" = None) -> "list[Target]":
    """Every target of this run, references parsed; usage ShimError on bad input.

    With `errors` (a list), every bad target is appended to it and the others are still
    planned (`shim check` reports them all); without it the first problem is raised."""
    s = config.secrets
    targets = []

    def add(make: "Callable[..., Any]", *args: "Any", **kw: "Any") -> None:
        try:
            target = make(*args, **kw)
        except ShimError as err:
            if errors is None:
                raise
            errors.append(err)
            return
        if target is not None:  # None: only words like "xref+", no reference
            targets.append(target)

    for name, text in s.env.items():
        add(_target, "env", name, text, config.source_of("secret") + f" {name}")
    for prefix, text in s.env_prefix.items():
        add(_target, "env_prefix", prefix, text,
            config.source_of("secret_env_prefix") + f" {prefix}")
    for path, text in s.files.items():
        add(_target, "file", path, text, config.source_of("secret_file") + f" {path}")
    for path, text in s.dirs.items():
        add(_target, "dir", path, text, config.source_of("secret_dir") + f" {path}")
    for i, text in enumerate(s.env_from):
        add(_target, "env_from", "", text, config.source_of("env_from") + f"[{i}]")
    for i, raw in enumerate(s.items or ()):
        add(_item, raw, f"{config.source_of('secret_items')}[{i}]")
    if s.env_refs != "off":
        from shim.sources.embedded import contains
        from shim.sources.refs import is_ref
        for name, value in env.items():
            if name.startswith("SHIM_"):
                continue
            if contains(value) or (s.env_refs == "all" and is_ref(value)):
                add(_target, "env", name, value, f"variable {name}", in_place=True)
    add(_check_duplicates, targets)
    return targets


def _target(kind, dest, text, where, optional=False, default=None, mode=DEFAULT_MODE,
            uid=None, gid=None, in_place=False):
    from shim.sources import embedded
    from shim.sources.fetch import Item
    from shim.sources.refs import RefError, parse
    if kind == "env" and not is_name(dest):
        raise usage_error(where, f"invalid variable name {show(dest[:40])}",
                          "use letters, digits and _, not starting with a digit")
    if kind == "env_prefix" and dest and not is_name(dest):
        raise usage_error(where, f"invalid variable prefix {show(dest[:40])}",
                          "use letters, digits and _, not starting with a digit")
    if kind == "file" and (dest.endswith(("/", "/.")) or os.path.basename(dest) in ("", ".", "..")):
        raise usage_error(where, f"{show(dest)} names a directory, not a file",
                          "write the file's name (PATH/NAME), or use --secret-dir for every key")
    label = f"{kind} {dest}".strip() if kind != "env_from" else "env_from"
    spans = []
    if not text.startswith(("arn:", "gcp:")):
        try:  # references inside a longer text (vals' `prefix-ref+...+-suffix`)
            spans = embedded.scan(text)
        except embedded.EmbeddedError as err:
            inside = err.offset > 0 or "expected ref+SCHEME" in err.cause  # part of a longer text
            raise usage_error(where, str(err), "end a reference with '+' and write a literal "
                              "'+' inside it as %2B: prefix-ref+SCHEME://PATH#/key+-suffix" if inside
                              else "fix the reference: ref+SCHEME://PATH[?PARAMETERS][#/POINTER]") \
                from None
        if in_place and not spans:
            return None
        if spans and not embedded.is_whole(text, spans):
            if kind not in ("env", "file"):
                raise usage_error(where, "references inside a longer text make one text value",
                                  f"use it for an env or file target, not {kind}")
            items = [Item(span.ref, label, optional, default) for span in spans]
            return Target(kind, dest, items[0], where, mode, uid, gid,
                          embedded.Composite(text, spans), items)
    try:  # one whole reference (a trailing '+' ends it, as inside a text)
        ref = spans[0].ref if spans else parse(text)
    except RefError as err:
        raise usage_error(where, f"malformed reference {show(text[:80])}: {err}",
                          "write ref+SCHEME://PATH[?PARAMS][#/json/pointer]") from None
    return Target(kind, dest, Item(ref, label, optional, default), where, mode, uid, gid)


def _item(raw, where):
    if not isinstance(raw, dict):
        raise usage_error(where, "expected an object", '{"ref": "ref+...", "env": "NAME"}')
    unknown = set(raw) - set(TARGET_KEYS) - {"ref", "mode", "owner", "optional", "default"}
    if unknown:
        raise usage_error(f"{where}.{sorted(unknown)[0]}", "unknown key",
                          "known: ref, env, env_prefix, file, dir, env_from, mode, owner, "
                          "optional, default")
    kinds = [k for k in TARGET_KEYS if k in raw]
    if len(kinds) != 1:
        raise usage_error(where, "needs exactly one of env, env_prefix, file, dir, env_from",
                          "one target per item; repeat the ref in another item")
    kind = kinds[0]
    dest = raw[kind]
    if kind == "env_from":
        if dest is not True:
            raise usage_error(f"{where}.env_from", "expected true", '"env_from": true')
        dest = ""
    elif not isinstance(dest, str) or (kind != "env_prefix" and not dest):
        raise usage_error(f"{where}.{kind}", "expected a non-empty string", f'"{kind}": "..."')
    if not isinstance(raw.get("ref"), str):
        raise usage_error(f"{where}.ref", "expected a reference string", '"ref": "ref+..."')
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise usage_error(f"{where}.optional", "expected true or false", '"optional": true')
    default = raw.get("default")
    if default is not None and not isinstance(default, str):
        raise usage_error(f"{where}.default", "expected a string", '"default": "..."')
    mode = _mode(raw.get("mode", DEFAULT_MODE), f"{where}.mode")
    uid, gid = _owner(raw.get("owner"), f"{where}.owner")
    return _target(kind, dest, raw["ref"], where, optional, default, mode, uid, gid)


def _mode(raw, where):
    mode = None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 0o7777:
        mode = raw
    elif isinstance(raw, str) and _octal(raw):
        mode = int(raw, 8)
    if mode is None:
        raise usage_error(where, "expected an octal mode", 'write "0440"')
    if mode & 0o7000:  # as Kubernetes' defaultMode: permission bits only
        raise usage_error(where, f"mode {mode:04o} sets setuid, setgid or sticky bits, which a "
                          "secret file must not have", 'use permission bits only: "0440"')
    return mode


def _octal(text):
    """0?[0-7]{3,4}: a permission mode as written in a config ("0440", "440", "00440")."""
    return text.isascii() and all(c in "01234567" for c in text) and \
        (3 <= len(text) <= 4 or (len(text) == 5 and text[0] == "0"))


def _numeric_owner(text):
    """UID or UID:GID, ASCII digits only."""
    uid, sep, gid = text.partition(":")
    return all(part.isascii() and part.isdigit() for part in ((uid, gid) if sep else (uid,)))


def _owner(raw, where):
    if raw is None:
        return None, None
    if isinstance(raw, str) and _numeric_owner(raw):
        uid, _, gid = raw.partition(":")
        return int(uid), int(gid) if gid else None
    raise usage_error(where, "expected UID or UID:GID (numbers)", 'write "1000:1000"')


def _check_duplicates(targets):
    seen: dict = {}
    for t in targets:
        if t.kind in ("env", "file", "dir"):
            key = ("env" if t.kind == "env" else "path",
                   t.dest if t.kind == "env" else os.path.abspath(t.dest))
            if key in seen:
                raise usage_error(t.where, f"the same {t.kind} target as {seen[key]}",
                                  "give each variable, file and directory one reference")
            seen[key] = t.where


# -- fetch ------------------------------------------------------------------------------
def fetch(targets: "list[Target]", config: "Config", env: "Mapping[str, str]",
          cancelled: "Callable[[], bool] | None" = None, log: "Callable[..., object] | None" = None,
          store: "dict | None" = None) -> "list[tuple[Target, Any]]":
    """[(Target, Result)] in target order, or the fail-closed ShimError."""
    from shim.sources.fetch import fetch_all
    settings = {}
    if config.secrets.vault_token_file:
        settings["vault_token_file"] = config.secrets.vault_token_file
    results = iter(fetch_all([i for t in targets for i in t.items], env=env,
                             # None for an empty --fetch-deadline= (kinds._duration): reported
                             deadline=config.secrets.deadline, cancelled=cancelled,  # type: ignore[arg-type]
                             settings=settings, store=store, log=log))
    return [(t, _composed(t, [next(results) for _ in t.items])) for t in targets]


def _composed(target, results):
    """A target's one Result: the fetched one, or its text with every reference put in."""
    if target.compose is None:
        return results[0]
    try:
        value = target.compose.render([r.value for r in results])
    except ValueError as err:
        raise _bad(target.item, str(err)) from None
    return Composed(target.item, value, results, target.compose.secret)


class Composed(Result):
    """A composed text; `parts` are the references' own results (masked one by one: a
    password inside a URL is masked wherever it appears), `secret` from secretref+."""

    __slots__ = ("parts", "secret")

    def __init__(self, item, value, parts, secret):
        super().__init__(item, value)
        self.parts, self.secret = parts, secret


def mask_values(pairs: "list[tuple[Target, Any]]") -> "list[str]":
    """Every value to mask: fetched values, the references inside composed texts, and the
    whole text of a `secretref+` composition."""
    from shim.sources.fetch import secret_values
    results = []
    for _, result in pairs:
        parts = getattr(result, "parts", None)
        if parts is None:
            results.append(result)
            continue
        results += parts
        if result.secret:
            results.append(result)
    return secret_values(results)


# -- values into variables --------------------------------------------------------------
def variables(pairs: "list[tuple[Target, Any]]", env_for_dotenv: "Mapping[str, str] | None" = None) -> "dict[str, str]":
    """{NAME: text} from every env target; collisions name both sources (exit 125)."""
    origin: dict
    out, origin = {}, {}

    def put(name: str, value: str, where: str) -> None:
        if name in origin:
            raise usage_error(f"variable {name}", f"set by both {origin[name]} and {where}",
                              "rename one key, use another prefix or drop one reference")
        out[name], origin[name] = value, where

    for target, result in pairs:
        if target.kind not in ENV_KINDS or result.value is None:
            continue
        item = target.item
        if target.kind == "env":
            if isinstance(result.value, (dict, list)):
                raise _bad(item, "the value is a JSON " + (
                    "object" if isinstance(result.value, dict) else "array") + ", but a "
                    "variable takes text; select one value with a #/KEY fragment, or use "
                    "--secret-env-prefix for every key")
            put(target.dest, _text(result.value, item), target.where)
            continue
        mapping = _mapping(result.value, item, dotenv=target.kind == "env_from",
                           env=env_for_dotenv)
        for key, value in mapping.items():
            name = target.dest + env_name(key) if target.kind == "env_prefix" else key
            if not is_name(name):
                raise _bad(item, f"key {show(key[:40])} does not make a valid variable name")
            put(name, _text(value, item), f"{target.where} key {key}")
    return out


def env_name(key: str) -> str:
    """chamber-style: upper-case, every character that is not a letter or digit becomes _."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in key).upper()


def _text(value, item):
    from shim.sources.base import json_text
    value = json_text(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(item, "the value is binary (not UTF-8) and cannot be an environment "
                             "variable; write it to a file with --secret-file") from None
    if "\0" in value:
        raise _bad(item, "the value contains a NUL byte and cannot be an environment variable")
    return value


def _mapping(value, item, dotenv=False, env=None):
    """A dict from a JSON object, or (dotenv) from dotenv text whose ${VAR} expands against
    `env` as --env-file's does (the delegate's environment so far)."""
    if isinstance(value, dict):
        return value
    text = value
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(item, "expected a JSON object, got binary data") from None
    if isinstance(text, str):
        from shim.sources.base import json_loads
        if text.lstrip().startswith("{"):
            try:
                doc = json_loads(text)  # numbers keep their JSON text
            except ValueError as err:
                raise _bad(item, f"malformed JSON object ({err})") from None
            if isinstance(doc, dict):
                return doc
        elif dotenv:
            from shim.run.envlayer import parse_dotenv
            try:
                return dict(parse_dotenv(text, item.ref.display(), env or {}))
            except ShimError as err:
                raise _bad(item, f"not dotenv text or a JSON object: {err.obj}: "
                                 f"{err.cause}") from None
    what = "dotenv text or a JSON object" if dotenv else "a JSON object (or an SSM path)"
    raise _bad(item, f"expected {what}, got a single value")


def _bad(item, cause):
    from shim.sources.fetch import fetch_error
    return fetch_error(item, cause)


# -- values into files ------------------------------------------------------------------
def file_bytes(value: object) -> bytes:
    """A value as a file holds it: bytes as they are, everything else as its text
    (shim.sources.base.json_text: numbers as written, null empty, objects compact JSON)."""
    from shim.sources.base import json_text
    value = json_text(value)
    return value if isinstance(value, bytes) else value.encode("utf-8")


def dir_payload(target: "Target", value: "Any",
                log: "Callable[[str, str], object] | None" = None) -> "dict[str, bytes]":
    """{file name: bytes} of a dir target.  A key with '/' (an SSM path below the one asked
    for) is written with '_' instead, and a warning says so; a key that cannot be a file
    name, or two keys that become one name, are refused naming the keys as fetched."""
    from shim.sources.targets import key_problem
    origin: dict
    payload, origin, renamed = {}, {}, []
    for key, v in _mapping(value, target.item).items():
        name = key.replace("/", "_")
        problem = key_problem(name)
        if problem:
            raise _bad(target.item, f"key {show(key[:80])} cannot be a file name in "
                                    f"{target.dest} ({problem}); rename it at the source or "
                                    "select the keys you need with --secret-file")
        if name in origin:
            raise _bad(target.item, f"keys {show(origin[name][:80])} and {show(key[:80])} "
                                    f"are both written as {show(name[:80])}; rename one at the source")
        if name != key:
            renamed.append(f"{show(key[:80])} as {show(name[:80])}")
        payload[name], origin[name] = file_bytes(v), key
    if renamed and log is not None:
        log("warn", f"write secret dir {target.dest}: key(s) with '/' written with '_': "
                    + ", ".join(renamed[:5]) + (" ..." if len(renamed) > 5 else ""))
    return payload


def write_targets(pairs: "list[tuple[Target, Any]]", log: "Callable[[str, str], object] | None" = None,
                  first: bool = False) -> bool:
    """Write file and dir targets all-or-nothing: every one is staged (temp files, a new
    generation) before any is published, so a failure leaves none of them behind.
    True when anything changed.  Optional misses are skipped."""
    from shim.sources import targets as writers
    if first:
        _preflight(pairs)
    writes: list = []
    for target, result in pairs:
        if target.kind not in FILE_KINDS or result.value is None:
            continue
        if first and log is not None and not writers.memory_backed(target.dest):
            log("warn", f"write secret {target.kind} {target.dest}: not on a memory-backed "
                        "filesystem; mount a tmpfs (emptyDir medium Memory) there")
        if target.kind == "file":
            data = file_bytes(result.value)
            if not _same_file(target.dest, data):
                writes.append((writers.stage_file, (target.dest, data, target.mode, target.uid,
                                                    target.gid)))
        else:
            payload = dir_payload(target, result.value, log if first else None)
            writes.append((writers.stage_dir, (target.dest, payload, target.mode, target.uid,
                                               target.gid)))
    return writers.write_all_or_nothing(writes) > 0


def _preflight(pairs):
    """Before the first write: every target's filesystem must be writable, so a read-only
    mount fails the start with nothing written rather than after half the files."""
    import errno
    for target, result in pairs:
        if target.kind not in FILE_KINDS or result.value is None:
            continue
        path = os.path.abspath(target.dest)
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        try:
            readonly = os.statvfs(path).f_flag & os.ST_RDONLY
        except OSError:
            continue  # the writer reports it
        if readonly:
            raise ShimError("write", f"secret {target.kind} {target.dest}",
                            os.strerror(errno.EROFS).lower(),
                            "mount a writable volume there (emptyDir with medium Memory, "
                            "tmpfs) or choose another path", reason=REASON_SETUP)


def _same_file(path, data):
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


# -- the step -----------------------------------------------------------------------------
def run_step(config: "Config", env: "dict[str, str]", cancelled: "Callable[[], bool] | None" = None,
             log: "Callable[[str, str], object] | None" = None,
             files: bool = True, sources_env: "Mapping[str, str] | None" = None) -> "tuple[list, list]":
    """Fetch, then apply to `env` (in place) and to disk.  Returns (pairs, masked values).

    `sources_env` is what the sources read (VAULT_ADDR, SHIM_VAULT_TOKEN...): the
    environment before hygiene; `env` is the delegate's."""
    targets = plan(config, env)
    if not files:
        targets = [t for t in targets if t.kind in ENV_KINDS]
    warn = (lambda m: log("warn", m)) if log is not None else None
    try:
        pairs = fetch(targets, config, dict(sources_env if sources_env is not None else env),
                      cancelled, warn)
    except ShimError as err:
        if err.reason == REASON_INTERRUPTED:
            raise Interrupted() from None
        raise
    updates = variables(pairs, env)  # every check before anything is written
    pairs += _env_from_refs(pairs, updates, config, sources_env or env, cancelled, warn)
    register(pairs, updates)
    if config.logs.mask_secrets:  # otherwise built when a message first needs it
        _build_mask(cancelled, log)
    if files:
        write_targets(pairs, log, first=True)
    for target, result in pairs:  # an optional reference that is missing: the variable is unset
        if target.kind == "env" and result.value is None and target.dest not in updates:
            env.pop(target.dest, None)
    env.update(updates)
    # What the output masking registers: every value as delivered (binary ones too).
    return pairs, mask_values(pairs) + binary_values(pairs)


def _env_from_refs(pairs, updates, config, env, cancelled, warn):
    """References inside --env-from contents: a second fetch round (one level, no
    recursion), applied to `updates`; the pairs it fetched, for masking."""
    from shim.sources.embedded import contains
    targets = []
    for target, result in pairs:
        if target.kind != "env_from" or result.value is None:
            continue
        for key in _mapping(result.value, target.item, dotenv=True):
            if contains(updates.get(key, "")):
                t = _target("env", key, updates[key], f"{target.where} key {key}",
                            in_place=True)
                if t is not None:
                    targets.append(t)
    if not targets:
        return []
    more = fetch(targets, config, dict(env), cancelled, warn)
    for target, result in more:
        if result.value is None:
            updates.pop(target.dest, None)
        else:
            updates[target.dest] = _text(result.value, target.item)
    return more


def register(pairs: "list[tuple[Target, Any]]", updates: "Mapping[str, str] | None" = None) -> "Masker":
    """Every value of this run into the mask registry, as it is delivered: the fetched
    values (each value of a JSON object or an SSM path, binary ones as bytes), each
    variable set (one per --env-from key, numbers and booleans in their text form), each
    file and directory key's content.  A composed text (a reference inside a longer text)
    is registered by its references' values, whole only for secretref+."""
    from shim.sources.base import register as put
    from shim.util.mask import REGISTRY
    # What is delivered first: when the masking budget is short, these are what counts.
    composed = {t.dest for t, r in pairs if getattr(r, "parts", None) is not None}
    put(*(value for name, value in (updates or {}).items() if name not in composed))
    for target, result in pairs:
        if target.kind in FILE_KINDS and result.value is not None:
            try:
                values = ([result.value] if target.kind == "file" else
                          list(_mapping(result.value, target.item).values()))
            except ShimError:
                values = []  # reported where it is written
            put(*(file_bytes(v) for v in values))
    for target, result in pairs:  # then what was fetched (references inside composed texts)
        parts = getattr(result, "parts", None)
        if parts is None and target.kind in ("env_from", "env_prefix", "dir"):
            continue  # its values were registered one by one, as delivered, above
        for part in (parts or []) + ([result] if parts is None or result.secret else []):
            _walk(part.value, put)
    return REGISTRY


def binary_values(pairs: "list[tuple[Target, Any]]") -> "list[bytes]":
    """Fetched values that are not UTF-8 (mask_values leaves them out), as bytes."""
    out = []
    for _, result in pairs:
        for value in (result.value.values() if isinstance(result.value, dict)
                      else [result.value]):
            if isinstance(value, bytes):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    out.append(value)
    return out


def _walk(value, put) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _walk(v, put)
    elif isinstance(value, list):
        for v in value:
            _walk(v, put)
    elif value is not None and value != "":
        from shim.sources.base import json_text
        put(json_text(value))


def _build_mask(cancelled, log):
    """Build the automaton now, where a stop signal is honoured (it is asked as the
    automaton grows); warn about what cannot be masked."""
    from shim.util.mask import REGISTRY, Interrupted as Stopped
    try:
        REGISTRY.build(cancelled)
    except Stopped:
        raise Interrupted() from None
    if log is not None:
        for message in REGISTRY.warnings():
            log("warn", message)


class Interrupted(Exception):
    """A stop signal arrived while fetching: the pipeline reports it as it does for hooks."""

