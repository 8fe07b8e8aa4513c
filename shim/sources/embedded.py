"""References inside longer text, as vals writes them.

    postgres://app:ref+vault://secret/db#/password+@db:5432/app
    user=ref+env://USER+ pass=secretref+vault://secret/db#/password+

A reference starts at `ref+` (or `secretref+`, which marks its value as a secret to mask,
as in vals) and runs to the first `+`, which ends it and is dropped, or to whitespace, a
quote, a backtick, NUL or the end of the text, which end it and are kept.  A `+` that
belongs inside a reference is written `%2B` (paths, fragments and query values are
percent-decoded).  `ref+` right after a letter, digit or `_` is part of a word (`xref+`),
not a reference.  Any other `ref+` must be a complete reference: a malformed one is an
`EmbeddedError` with its 1-based column, never text passed through silently (a typo would
otherwise reach the program as a password).

The scan is one pass (`str.find`, then each reference's characters once), linear in the
length of the text, and pure: nothing here touches the network.  No `re`: a start that
resolves references does not pay for importing it (several ms in the static binary).
"""

from shim.sources.refs import PREFIX, RefError, parse

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

SECRET_PREFIX = "secret" + PREFIX
# What ends a reference body besides whitespace: its own terminator `+`, quotes, NUL.
_STOP = frozenset("+\"'`\0")


def _word(ch):
    """Part of a word (as regex \\w): then a following `ref+` is text, not a reference."""
    return ch.isalnum() or ch == "_"


def _body_end(text, i):
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _STOP or ch.isspace():
            return i
        i += 1
    return n


class EmbeddedError(ValueError):
    """A `ref+` that is not a complete reference; `column` is 1-based, `cause` one line."""

    def __init__(self, offset, cause):
        super().__init__(f"malformed reference at column {offset + 1}: {cause}")
        self.offset = offset
        self.column = offset + 1
        self.cause = cause


class Span:
    """One reference in a text: text[start:end] is what it replaces (terminator included)."""

    __slots__ = ("start", "end", "ref", "secret")

    def __init__(self, start, end, ref, secret):
        self.start, self.end, self.ref, self.secret = start, end, ref, secret

    def __repr__(self) -> str:
        return f"Span({self.start}, {self.end}, {self.ref!r}, secret={self.secret})"


def contains(text: str) -> bool:
    """Cheap test: could `text` hold a reference?  (No parsing, no imports.)"""
    return PREFIX in text


def scan(text: str, base: int = 0) -> "list[Span]":
    """Every reference in `text`, in order; EmbeddedError for a malformed one.

    `base` is added to offsets in errors (a template passes a line's start)."""
    spans: list[Span] = []
    i = 0
    find = text.find
    while True:
        j = find(PREFIX, i)
        if j < 0:
            return spans
        start, secret = j, False
        if j >= 6 and text.startswith("secret", j - 6) and (j == 6 or not _word(text[j - 7])):
            start, secret = j - 6, True
        elif j > 0 and _word(text[j - 1]):
            i = j + len(PREFIX)  # inside a word: "xref+" is text
            continue
        body_start = j + len(PREFIX)
        end = _body_end(text, body_start)
        body = text[body_start:end]
        if "://" not in body:
            raise EmbeddedError(base + start, "expected ref+SCHEME://PATH"
                                + ("" if body else " after 'ref+'"))
        try:
            ref = parse(PREFIX + body)
        except RefError as err:
            raise EmbeddedError(base + start, str(err)) from None
        if end < len(text) and text[end] == "+":
            end += 1  # the terminator belongs to the reference
        spans.append(Span(start, end, ref, secret))
        i = end


def is_whole(text: str, spans: "list[Span]") -> bool:
    """True when `text` is exactly one plain reference (the classic, non-embedded form)."""
    return len(spans) == 1 and spans[0].start == 0 and spans[0].end == len(text) \
        and not spans[0].secret


class Composite:
    """A text with references inside; `render(values)` puts the resolved values in."""

    __slots__ = ("text", "spans")

    def __init__(self, text, spans):
        self.text, self.spans = text, spans

    @property
    def refs(self) -> "list[Any]":
        return [s.ref for s in self.spans]

    @property
    def secret(self) -> bool:
        return any(s.secret for s in self.spans)

    def render(self, values: "list[Any]") -> "str | None":
        """The text with span i replaced by values[i] (text, bytes, numbers); None when a
        value is None (an optional reference that is missing: the whole target is left out).
        ValueError (naming the column) for a value that cannot be text."""
        out, pos = [], 0
        for span, value in zip(self.spans, values, strict=True):
            if value is None:
                return None
            out.append(self.text[pos:span.start])
            out.append(as_text(value, span.start))
            pos = span.end
        out.append(self.text[pos:])
        return "".join(out)


def as_text(value: object, offset: int = 0) -> str:
    """A fetched value as text inside a string (JSON for numbers and booleans)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"the reference at column {offset + 1} is binary (not UTF-8) and "
                             "cannot be put inside text") from None
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        kind = "object" if isinstance(value, dict) else "array"
        raise ValueError(f"the reference at column {offset + 1} is a JSON {kind}; select one "
                         "value with a #/KEY fragment")
    import json
    return json.dumps(value)
