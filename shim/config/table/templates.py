"""Top-level `templates`: config files rendered before the pre-hooks (a ConfigMap mount with
the secrets inside).  On the command line `--template SRC=DST` (repeatable; SRC may itself be
a reference, split at the last '='); in a file a list of
`{"source", "destination", "mode", "owner", "on_change"}` (strings "SRC=DST" allowed too).
Rendering is shim.run.templates."""

from shim.config.option import TEMPLATE_LIST, Option

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

SECTION = ""

KEYS = ("source", "destination", "mode", "owner", "on_change")
ON_CHANGE = r"^(none|restart|signal(:[A-Za-z0-9+-]+)?|exec:.+)$"
ITEM_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": "^.+=.+$", "description": "SRC=DST"},
        {"type": "object", "additionalProperties": False,
         "required": ["source", "destination"],
         "properties": {
             "source": {"type": "string", "minLength": 1,
                        "description": "template file, or a reference (ref+s3://...)"},
             "destination": {"type": "string", "minLength": 1, "description": "file to write"},
             "mode": {"anyOf": [{"type": "string", "pattern": "^0?[0-7]{3,4}$"},
                                {"type": "integer", "minimum": 0, "maximum": 4095}],
                      "description": "octal; default 0400 when it holds a secret, else 0644"},
             "owner": {"type": "string", "pattern": "^[0-9]+(:[0-9]+)?$",
                       "description": "UID[:GID]; default shim's own user"},
             "on_change": {"type": "string", "pattern": ON_CHANGE,
                           "description": "with --refresh: signal[:SIG], restart, exec:CMD, none"},
         }},
    ]}

OPTIONS = (
    Option("template", ["--template"], "templates", TEMPLATE_LIST, [],
           "render template SRC (a file or a reference) to DST before the pre-hooks: ${VAR}, "
           "${VAR:-fallback}, $$ and embedded ref+ references replaced, nothing executed; "
           "repeatable", metavar="SRC=DST",
           schema={"type": "array", "items": ITEM_SCHEMA}),
)


def convert(opt: "Option", raw: object, where: str) -> "list[dict[str, Any]]":
    """Flags/variables give "SRC=DST" strings, a file objects too -> [dict of KEYS].
    (Called only when templates are configured: its imports stay off the plain start.)"""
    from shim.errors import usage_error
    from shim.util.text import jsontype
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list):
        raise usage_error(where, f"expected a list, got {jsontype(raw)}",
                          'write [{"source": "...", "destination": "..."}]')
    return [_one(item, f"{where}[{i}]" if len(raw) > 1 else where) for i, item in enumerate(raw)]


def _one(item, where):
    import re

    from shim.errors import usage_error
    from shim.util.text import jsontype, show
    if isinstance(item, str):
        source, eq, dest = item.rpartition("=")
        if not eq or not source or not dest:
            raise usage_error(where, f"expected SRC=DST, got {show(item)}",
                              "write --template /etc/tmpl/app.yaml=/run/app/app.yaml")
        item = {"source": source, "destination": dest}
    if not isinstance(item, dict):
        raise usage_error(where, f"expected an object or SRC=DST, got {jsontype(item)}",
                          '{"source": "...", "destination": "..."}')
    unknown = sorted(set(item) - set(KEYS))
    if unknown:
        raise usage_error(f"{where}.{unknown[0]}", "unknown key", "known: " + ", ".join(KEYS))
    out: dict[str, object] = {}
    for key in ("source", "destination"):
        value = item.get(key)
        if not isinstance(value, str) or not value or "\0" in value:
            raise usage_error(f"{where}.{key}", "expected a non-empty string", f'"{key}": "..."')
        out[key] = value
    mode = item.get("mode")
    if isinstance(mode, str) and re.fullmatch(r"0?[0-7]{3,4}", mode):
        mode = int(mode, 8)
    if mode is not None and not (isinstance(mode, int) and not isinstance(mode, bool)
                                 and 0 <= mode <= 0o7777):
        raise usage_error(f"{where}.mode", "expected an octal mode", 'write "0440"')
    out["mode"] = mode
    owner = item.get("owner")
    if owner is not None and not (isinstance(owner, str) and re.fullmatch(r"[0-9]+(:[0-9]+)?",
                                                                          owner)):
        raise usage_error(f"{where}.owner", "expected UID or UID:GID (numbers)",
                          'write "1000:1000"')
    out["owner"] = owner
    on_change = item.get("on_change")
    if on_change is not None and not (isinstance(on_change, str) and
                                      re.fullmatch(ON_CHANGE, on_change)):
        raise usage_error(f"{where}.on_change", f"invalid value {show(on_change)}",
                          "use signal[:SIG], restart, exec:CMD or none")
    out["on_change"] = on_change
    return out
