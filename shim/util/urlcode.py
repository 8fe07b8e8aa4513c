"""Percent-decoding and query strings, as urllib.parse does them, without importing it.

Why hand-written: `urllib.parse` imports `re` (and with it `enum`), several milliseconds
of every start that names a local reference (`ref+env://`, `ref+file://`) in the static
binary (SHIM_PROFILE_START=1 shows it).  These two functions are all the reference
grammar needs; tests/unit/test_urlcode.py checks them against urllib.parse.
"""

_HEXSET = frozenset("0123456789abcdefABCDEF")


def unquote(text: str) -> str:
    """urllib.parse.unquote: in each run of ASCII characters %XX sequences are decoded as
    UTF-8 (errors replaced); other characters, and malformed % sequences, are kept."""
    if "%" not in text:
        return text
    out, run, i, n = [], bytearray(), 0, len(text)
    while i < n:
        c = text[i]
        if not c.isascii():
            if run:
                out.append(run.decode("utf-8", "replace"))
                run = bytearray()
            out.append(c)
        elif c == "%" and text[i + 1:i + 2] in _HEXSET and text[i + 2:i + 3] in _HEXSET:
            run.append(int(text[i + 1:i + 3], 16))
            i += 3
            continue
        else:
            run.append(ord(c))
        i += 1
    if run:
        out.append(run.decode("utf-8", "replace"))
    return "".join(out)


def parse_qsl(qs: str) -> "list[tuple[str, str]]":
    """urllib.parse.parse_qsl(qs, keep_blank_values=True): [(name, value)], '+' as space."""
    pairs = []
    for part in qs.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def is_name(text: str) -> bool:
    """A portable variable name: [A-Za-z_][A-Za-z0-9_]* (no `re` needed)."""
    return bool(text) and text.isascii() and not text[0].isdigit() and \
        text.replace("_", "a").isalnum()


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """urllib.parse.quote: UTF-8, every byte but unreserved ones and `safe` as %XX."""
    keep = _UNRESERVED | frozenset(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))
