"""Values inside the tooling's one-line messages: JSON-style, as the runtime shows them."""

import json


def show(value, limit=100):
    """`value` as JSON (strings quoted, control characters escaped), cut at `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
