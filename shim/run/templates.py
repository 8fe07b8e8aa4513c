"""Pipeline step `templates`: config files in the shape the program reads, secrets inside.

    --template /etc/tmpl/app.yaml=/run/app/app.yaml     (SRC may be ref+s3://..., ref+vault://...)

    password: ref+vault://secret/db#/password+          an embedded reference (vals syntax)
    url: postgres://${DB_USER}@${DB_HOST:-localhost}    a variable, a fallback (which may nest
    price: $$5                                          ${} and references); $$ is a '$'

Nothing is executed and nothing else is special (a lone `$` is text), so a template cannot
run code or read what it does not name.  Variables come from the delegate's environment
(after --env and the secrets step; shim's own credentials are already scrubbed from it).
A variable that is unset (or empty) without a fallback is an error, as is a malformed
`${` or reference: each names SRC, the line and the column.

Order: sources that are references are fetched first (one phase), then every reference the
templates need (another phase: a reference in a fallback that is not taken is not fetched);
every template renders in memory, then all are written atomically (temp, fsync, rename), so a
failure leaves no file half-written.  Output that holds a fetched value is mode 0400 unless
`mode` says otherwise (0644 otherwise, as a ConfigMap volume); owner as for secret files.
This module is imported only when a run has templates.
"""

import os
import re

from shim.errors import REASON_USAGE, ShimError, usage_error
from shim.sources import embedded
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.config.options import Config
    from shim.sources.embedded import Span
    from shim.sources.fetch import Item, Result

SECRET_MODE = 0o400
PLAIN_MODE = 0o644
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL = re.compile(r"[$}]")
MAX_SOURCE = 16 << 20


class Template:
    """One configured template: where from (`source`: a path or a Ref), where to, mode,
    owner, its change action, and `where` it was configured (for messages)."""

    __slots__ = ("source", "ref", "dest", "mode", "uid", "gid", "on_change", "where")

    def __init__(self, source, ref, dest, mode, uid, gid, on_change, where):
        self.source, self.ref, self.dest = source, ref, dest
        self.mode, self.uid, self.gid, self.on_change, self.where = mode, uid, gid, on_change, where


# -- the template language: parse into nodes ------------------------------------------------
class Var:
    """${NAME} or ${NAME:-fallback}; `fallback` is a node list or None; `offset` of the '$'."""

    __slots__ = ("name", "fallback", "offset")

    def __init__(self, name, fallback, offset):
        self.name, self.fallback, self.offset = name, fallback, offset


class TemplateError(ValueError):
    """A syntax or render error at `offset` of the text; `cause` is one line."""

    def __init__(self, offset, cause):
        super().__init__(cause)
        self.offset, self.cause = offset, cause


def parse(text: str) -> "list[Any]":
    """Nodes: str (text), Var, embedded.Span (a reference).  TemplateError on bad syntax.
    One pass: every character is looked at once (fallbacks are parsed where they stand)."""
    return _sequence(text, 0, nested=False)[0]


def _sequence(text, i, nested):
    nodes: list = []
    n = len(text)
    while i < n:
        match = _SPECIAL.search(text, i)
        stop = match.start() if match else n
        if stop > i:
            _literal(nodes, text, i, stop)
        i = stop
        if i >= n:
            break
        if text[i] == "}":
            if nested:
                return nodes, i
            nodes.append("}")
            i += 1
            continue
        # text[i] == "$"
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            nodes.append("$")
            i += 2
        elif nxt == "{":
            var, i = _variable(text, i)
            nodes.append(var)
        else:
            nodes.append("$")
            i += 1
    if nested:
        raise TemplateError(n, "unterminated ${...}: a '}' is missing")
    return nodes, i


def _variable(text, start):
    name_match = _NAME.match(text, start + 2)
    if not name_match:
        raise TemplateError(start, "expected a variable name after '${' (letters, digits, _)")
    i = name_match.end()
    name = name_match.group()
    if text.startswith("}", i):
        return Var(name, None, start), i + 1
    if text.startswith(":-", i):
        fallback, i = _sequence(text, i + 2, nested=True)
        return Var(name, fallback, start), i + 1
    if i >= len(text):
        raise TemplateError(start, "unterminated ${...}: a '}' is missing")
    raise TemplateError(i, f"unexpected {show(text[i])} in ${{...}}: write ${{NAME}} or "
                           "${NAME:-fallback}")


def _literal(nodes, text, start, stop):
    """Text between markers, with the references in it as Spans (offsets in the template)."""
    chunk = text[start:stop]
    try:
        spans = embedded.scan(chunk)
    except embedded.EmbeddedError as err:
        raise TemplateError(start + err.offset, err.cause) from None
    pos = 0
    for span in spans:
        if span.start > pos:
            nodes.append(chunk[pos:span.start])
        span.start, span.end = span.start + start, span.end + start
        nodes.append(span)
        pos = span.end - start
    if pos < len(chunk):
        nodes.append(chunk[pos:])


def needed(nodes: "list[Any]", env: "Mapping[str, str]") -> "list[Span]":
    """The references rendering will use with `env` (untaken fallbacks are skipped)."""
    out = []
    for node in nodes:
        if isinstance(node, embedded.Span):
            out.append(node)
        elif isinstance(node, Var) and not env.get(node.name) and node.fallback is not None:
            out += needed(node.fallback, env)
    return out


def render(nodes: "list[Any]", env: "Mapping[str, str]", values: "dict[int, Any]") -> str:
    """The text; `values` maps id(span) -> fetched value (None: an optional one missing,
    which renders empty).  TemplateError for an unset variable without fallback."""
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Var):
            value = env.get(node.name)
            if value:
                out.append(value)
            elif node.fallback is not None:
                out.append(render(node.fallback, env, values))
            else:
                raise TemplateError(node.offset, f"variable {node.name} is not set and has no "
                                                 "fallback")
        else:
            value = values[id(node)]
            if value is not None:
                try:
                    out.append(embedded.as_text(value))
                except ValueError as err:
                    raise TemplateError(node.start, str(err).replace(" at column 1", "")) \
                        from None
    return "".join(out)


def position(text: str, offset: int) -> "tuple[int, int]":
    """(line, column), both 1-based, of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# -- the step ---------------------------------------------------------------------------------
def plan(config: "Config") -> "list[Template]":
    """[Template] from the resolved config; usage ShimError for a malformed source reference."""
    from shim.sources.refs import RefError, parse as parse_ref
    out = []
    where_base = config.source_of("template")
    for i, raw in enumerate(config.templates):
        where = f"{where_base}[{i}] {raw['source']}" if len(config.templates) > 1 else \
            f"{where_base} {raw['source']}"
        source, ref = raw["source"], None
        if source.startswith(("ref+", "arn:", "gcp:secretmanager:")):
            try:
                ref = parse_ref(source)
            except RefError as err:
                raise usage_error(where, f"malformed source reference: {err}",
                                  "write ref+SCHEME://PATH or a file path") from None
        uid = gid = None
        if raw.get("owner"):
            u, _, g = raw["owner"].partition(":")
            uid, gid = int(u), int(g) if g else None
        out.append(Template(source, ref, raw["destination"], raw.get("mode"), uid, gid,
                            raw.get("on_change"), where))
    _check_destinations(out)
    return out


def _check_destinations(templates):
    seen: dict = {}
    for t in templates:
        key = os.path.abspath(t.dest)
        if key in seen:
            raise usage_error(t.where, f"the same destination as {seen[key]}",
                              "give each template its own destination")
        seen[key] = t.where


class Rendered:
    """What one render produced: {dest: bytes}, the values to mask, and whether anything
    fetched was in each output (for the default mode)."""

    def __init__(self):
        self.outputs = []  # (Template, bytes, holds_secret)
        self.values = []  # every fetched value, for masking

    def write(self, only_changed: bool = False) -> "list[Template]":
        """Write every output atomically; the templates whose file changed."""
        from shim.sources.targets import write_file
        changed = []
        for template, data, secret in self.outputs:
            mode = template.mode if template.mode is not None else \
                (SECRET_MODE if secret else PLAIN_MODE)
            if only_changed and _same(template.dest, data, mode):
                continue
            write_file(template.dest, data, mode, template.uid, template.gid)
            changed.append(template)
        return changed


def _same(path, data, mode):
    try:
        if os.stat(path).st_mode & 0o7777 != mode:
            return False
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def render_all(templates: "list[Template]", env: "Mapping[str, str]", fetch: "Callable[[list[Item]], list[Result]]",
               log: "Callable[[str, str], object] | None" = None) -> "Rendered":
    """Read or fetch every source, parse, fetch the references, render in memory.

    `env`: the variables ${} sees; `fetch(items)` -> [Result] (the secrets phase's fetch,
    fail closed).  Returns Rendered; ShimError naming SRC (and line, column) on any failure."""
    from shim.sources.fetch import Item
    texts = {}
    remote = [t for t in templates if t.ref is not None]
    if remote:
        results = fetch([Item(t.ref, f"template {t.dest}") for t in remote])
        for t, result in zip(remote, results, strict=True):
            texts[t.dest] = _decode(result.value, t)
    for t in templates:
        if t.ref is None:
            texts[t.dest] = _read(t)
    parsed = []
    for t in templates:
        text = texts[t.dest]
        try:
            nodes = parse(text)
        except TemplateError as err:
            raise _error(t, text, err) from None
        parsed.append((t, text, nodes, needed(nodes, env)))
    items, owners = [], []
    for t, _, _, spans in parsed:
        for span in spans:
            items.append(Item(span.ref, f"template {t.dest}"))
            owners.append(span)
    values = {}
    results = fetch(items) if items else []
    for span, result in zip(owners, results, strict=True):
        values[id(span)] = result.value
    out = Rendered()
    from shim.sources.base import register
    from shim.sources.fetch import secret_values
    out.values = secret_values(results)
    register(*out.values)  # masked from here on, in messages too
    for t, text, nodes, spans in parsed:
        missing = [s for s in spans if values[id(s)] is None]
        if missing:  # an optional reference is missing: the file is not written
            if log is not None:
                log("warn", f"render template {t.source}: {missing[0].ref.display()} is "
                            f"missing (optional); {t.dest} not written")
            continue
        try:
            rendered = render(nodes, env, values)
        except TemplateError as err:
            raise _error(t, text, err) from None
        holds_secret = t.ref is not None or bool(spans)
        out.outputs.append((t, rendered.encode("utf-8", "surrogateescape"), holds_secret))
    return out


def _read(t):
    try:
        with open(t.source, "rb") as f:
            data = f.read(MAX_SOURCE + 1)
    except OSError as err:
        raise ShimError("read", f"template {t.source}", (err.strerror or str(err)).lower(),
                        f"check the path given by {t.where.split(' ')[0]}") from None
    if len(data) > MAX_SOURCE:
        raise usage_error(f"template {t.source}", f"larger than {MAX_SOURCE >> 20} MiB",
                          "split it or trim it")
    return _decode(data, t)


def _decode(value, t):
    # Bytes that are not UTF-8 pass through unchanged (surrogate escapes out and back).
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    raise ShimError("render", f"template {t.source}", "the source reference is JSON, not text",
                    "point the source at a text value (a #/KEY fragment selects one)")


def _error(t, text, err):
    line, column = position(text, err.offset)
    return ShimError("render", f"template {t.source}", f"line {line} column {column}: "
                     f"{err.cause}", "write ${NAME}, ${NAME:-fallback}, $$ for '$', and end a "
                     "reference with '+'", reason=REASON_USAGE)


def run_step(config: "Config", env: "Mapping[str, str]", sources_env: "Mapping[str, str]",
             cancelled: "Callable[[], bool] | None" = None,
             log: "Callable[[str, str], object] | None" = None) -> "tuple[list[Template], Rendered]":
    """Plan, render and write every template; (templates, Rendered) for refresh/masking."""
    templates = plan(config)
    fetch = fetcher(config, sources_env, cancelled, log)
    rendered = render_all(templates, env, fetch, log)
    _build_mask(cancelled)
    rendered.write()
    return templates, rendered


def _build_mask(cancelled):
    """The new values effective in the mask before any file shows them."""
    from shim.util.mask import REGISTRY, Interrupted
    try:
        REGISTRY.build(cancelled)
    except Interrupted:
        from shim.errors import EXIT_FETCH, REASON_INTERRUPTED
        raise ShimError("render", "templates", "interrupted by a signal",
                        reason=REASON_INTERRUPTED, code=EXIT_FETCH) from None


def fetcher(config: "Config", sources_env: "Mapping[str, str]", cancelled: "Callable[[], bool] | None" = None,
            log: "Callable[[str, str], object] | None" = None,
            store: "dict | None" = None) -> "Callable[[list[Item]], list[Result]]":
    """fetch(items) -> [Result] with the secrets settings (deadline, Vault token file)."""
    from shim.sources.fetch import fetch_all
    settings = {}
    if config.secrets.vault_token_file:
        settings["vault_token_file"] = config.secrets.vault_token_file
    warn = (lambda m: log("warn", m)) if log is not None else None

    def fetch(items: "list[Item]") -> "list[Result]":
        # deadline: None for an empty --fetch-deadline= (kinds._duration): reported
        return fetch_all(items, env=dict(sources_env), deadline=config.secrets.deadline,  # type: ignore[arg-type]
                         cancelled=cancelled, settings=settings, store=store, log=warn)
    return fetch
