"""Values inside the tooling's one-line messages: JSON-style, as the runtime shows them."""

import json


def show(value, limit=100):
    """`value` as JSON (strings quoted, control characters escaped), cut at `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def kind_of(value):
    """What a JSON/YAML value is, in words: `a string`, `a number`, `a mapping`, `null`…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"  # YAML's dates and the like
