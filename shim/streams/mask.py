"""Secret masking of output: every registered value becomes `***`.

`Masker` holds the values (the secrets capability registers what it resolved,
`--mask-env NAME` adds variables' values); `StreamMask` is one stream's state.
A value split across two writes is still caught: the tail of a chunk that could
be the start of a value is carried over to the next chunk, but never longer than
`--mask-delay` (the caller flushes the carry on a timer), so output is never held.
"""

import re

from shim.errors import ShimError

MASK = b"***"
MIN_LENGTH = 2  # a one-character value would mask every occurrence of that character


class Masker:
    """The registry of values to mask.  `add` refuses values that would mask everything."""

    def __init__(self):
        self._values = set()
        self._pattern = None

    def add(self, value, what="mask value"):
        """Register `value` (str or bytes).  Raises ShimError (exit 125) for empty/1-char values.

        `what` names where it came from (a variable's name, a secret reference), never the value.
        """
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        if len(raw) < MIN_LENGTH:
            raise ShimError("mask", what, f"a value of {len(raw)} byte(s) would mask every "
                            "occurrence of it in the output",
                            "mask only values of at least 2 bytes")
        # Values also appear without their trailing newline (files read with one).
        stripped = raw.rstrip(b"\r\n")
        for v in {raw, stripped}:
            if len(v) >= MIN_LENGTH:
                self._values.add(v)
        self._pattern = None

    def __bool__(self):
        return bool(self._values)

    def __len__(self):
        return len(self._values)

    @property
    def pattern(self):
        if self._pattern is None:
            # Longest first: a value that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile(b"|".join(re.escape(v) for v in ordered))
        return self._pattern

    @property
    def longest(self):
        return max(map(len, self._values), default=0)

    def heads(self):
        """{first byte: [values]} for the carry search."""
        heads = {}
        for v in self._values:
            heads.setdefault(v[0], []).append(v)
        return heads

    def stream(self):
        return StreamMask(self)

    def scrub(self, data):
        """Mask complete occurrences in `data` (a whole message: no carry)."""
        if not self._values:
            return data
        if isinstance(data, str):
            return self.scrub(data.encode("utf-8", "surrogateescape")).decode("utf-8", "replace")
        return self.pattern.sub(MASK, data)


class StreamMask:
    """One stream's masking state: `feed(chunk)` -> bytes safe to emit now; `flush()` the rest."""

    def __init__(self, masker):
        self.masker = masker
        self.carry = b""
        self._heads = masker.heads()
        self._longest = masker.longest
        self._values = sorted(masker._values, key=len)

    def feed(self, chunk):
        data = self.carry + chunk if self.carry else chunk
        pattern = self.masker.pattern
        # Hold back the longest tail that could still grow into a value (even one that
        # completes a shorter value now: "abc" may become "abcdef")...
        cut = self._carry_start(data, len(data) - self._longest + 1)
        if cut < len(data):
            for match in pattern.finditer(data, max(0, cut - self._longest)):
                if match.start() < cut < match.end():  # ...unless a whole value straddles it
                    cut = self._carry_start(data, match.end())
        self.carry = data[cut:]
        head = data[:cut]
        # A substring test per value runs at memory speed; the regex only when one is there.
        if any(v in head for v in self._values):
            return pattern.sub(MASK, head)
        return head

    def _carry_start(self, data, start):
        """Index of the longest suffix of data (from `start` on) that begins some value."""
        n = len(data)
        for i in range(max(start, 0), n):
            candidates = self._heads.get(data[i])
            if candidates:
                tail = data[i:]
                for v in candidates:
                    if len(v) > len(tail) and v.startswith(tail):
                        return i
        return n

    def flush(self):
        """Emit what is carried (called after --mask-delay, and at end of stream)."""
        out, self.carry = self.carry, b""
        return out
