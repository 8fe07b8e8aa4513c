"""The JSON Schema of the config file, generated from the option table.

`shim/config/config.schema.json` is this function's output, committed so editors and
CI can use it; a test keeps the two identical (`python -m shim.config.schema > ...`).
"""

from shim.config.option import (
    BOOL,
    COMMAND_MAP,
    DURATION,
    ENUM,
    EXIT_MAP,
    INT,
    JSON,
    LIST,
    MAP,
    PATH,
    SIGNAL_MAP,
    SIZE,
    STR,
)
from shim.config.options import OPTIONS

DURATION_PATTERN = r"^\s*(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ms|s|m|h))+\s*$|^\s*[0-9]+(\.[0-9]*)?\s*$"
SIZE_PATTERN = r"^\s*[0-9]+([kKmMgG]([iI]?[bB])?)?\s*$"
# Names in any case (the runtime upper-cases them), RTMIN+n / RTMAX-n, or a number.
SIGNAL_PATTERN = (r"^([Ss][Ii][Gg])?([A-Za-z][A-Za-z0-9]*|[Rr][Tt][Mm][Ii][Nn](\+[0-9]+)?"
                  r"|[Rr][Tt][Mm][Aa][Xx](-[0-9]+)?)$|^[0-9]+$")
# A rewrite's FROM: any of those but CHLD, which shim consumes and never forwards.
FORWARDED_PATTERN = r"^(?!([Ss][Ii][Gg])?[Cc][Hh][Ll][Dd]$)(" + SIGNAL_PATTERN + ")"


def _type(opt):
    if opt.schema is not None:
        return dict(opt.schema)
    kind = opt.kind
    if kind in (STR, PATH):
        return {"type": "string", "minLength": 1} if kind == PATH else {"type": "string"}
    if kind == BOOL:
        return {"type": "boolean"}
    if kind == INT:
        return {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]}
    if kind == SIZE:
        return {"anyOf": [{"type": "integer", "minimum": 0},
                          {"type": "string", "pattern": SIZE_PATTERN}]}
    if kind == DURATION:
        return {"anyOf": [{"type": "string", "pattern": DURATION_PATTERN},
                          {"type": "number", "minimum": 0}, {"type": "null"}]}
    if kind == ENUM:
        return {"enum": list(opt.choices)}
    if kind == LIST:
        return {"type": "array", "items": {"type": "string", "minLength": 1}}
    if kind == EXIT_MAP:
        value = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 255},
                           {"type": "string", "pattern": "^[0-9]+$"}]}
        return {"type": "object", "propertyNames": {"pattern": "^[0-9]+$"},
                "additionalProperties": value}
    if kind == SIGNAL_MAP:
        sig = {"type": "string", "pattern": SIGNAL_PATTERN}
        return {"type": "object", "propertyNames": {"type": "string", "pattern": FORWARDED_PATTERN},
                "additionalProperties": sig}
    if kind == MAP:
        return {"type": "object", "propertyNames": {"minLength": 1, "pattern": "^[^=]+$"},
                "additionalProperties": {"type": "string"}}
    if kind == JSON:
        return {"type": ["object", "array"]}
    if kind == COMMAND_MAP:
        argv = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
        return {"type": "object", "propertyNames": {"minLength": 1}, "additionalProperties": argv}
    raise AssertionError(kind)


def _properties(top):
    props: dict[str, dict] = {}
    for opt in OPTIONS:
        if not opt.key or (opt.key == "profile" and not top):
            continue
        entry = dict(_type(opt), description=opt.help)
        if "." in opt.key:
            section, sub = opt.key.split(".", 1)
            props.setdefault(section, {"type": "object", "additionalProperties": False,
                                       "properties": {}})["properties"][sub] = entry
        else:
            props[opt.key] = entry
    if "secrets" in props:  # the short form: the section is its item list
        props["secrets"] = {"anyOf": [props["secrets"]["properties"]["items"], props["secrets"]]}
        props["secrets"]["anyOf"][0].pop("description", None)
    props["command"] = {"type": "array", "minItems": 1, "items": {"type": "string"},
                        "description": "the delegate's argv when none is given on the command line"}
    return props


def schema() -> "dict":
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:shim:config-schema:1",
        "title": "shim configuration",
        "type": "object",
        "additionalProperties": False,
        "properties": dict(_properties(top=True), profiles={
            "type": "object",
            "description": "named overlays; --profile/SHIM_PROFILE/profile picks one",
            "additionalProperties": {"$ref": "#/$defs/overlay"},
        }),
        "$defs": {"overlay": {"type": "object", "additionalProperties": False,
                              "properties": _properties(top=False)}},
    }


if __name__ == "__main__":
    import sys

    from shim.util import jsonio

    sys.stdout.buffer.write(jsonio.dumps(schema(), indent=True) + b"\n")
