"""Secret masking: one registry of sensitive values, and an automaton that replaces them.

`Masker` is the registry.  Everything sensitive a run handles is registered in the
process-wide `REGISTRY` (shim.sources.register feeds it): fetched values as they were
delivered (each variable, file and directory key, numbers and booleans in their text
form, binary values as bytes), values that change on --refresh, --mask-env values, and
shim's own credentials (Vault tokens, AWS secret keys and session tokens, bearer tokens).
It is applied on every output path: the delegate's and the hooks' stdout/stderr (tee
files and sinks see the masked bytes), shim's own messages, errors and result records
(shim.errors.redact).

What is masked (documented in README, "Masking"):
- every occurrence of a value of at least MIN_LENGTH bytes (a trailing newline does not
  count); a shorter fetched value is not masked (it would hide every occurrence of a
  character) and a warning says how many; a shorter --mask-env value is refused;
- each line (whitespace trimmed) of a multi-line value, when at least LINE_MIN bytes,
  so a key printed line by line (with a logger's prefix) is masked too;
- the string and number leaves of a JSON object document;
- a value longer than MAX_PIECE bytes as consecutive MAX_PIECE-byte pieces (printed
  whole it is masked whole; a part shorter than a piece is not recognised);
- at most BUDGET bytes of pieces in all: beyond that, values are not masked and a
  warning says how many bytes were left out (a 64 MiB secret file is masked by its
  first BUDGET bytes, not by a 64 MiB automaton).
Every byte that belongs to an occurrence becomes part of a `***`; occurrences that
overlap become one `***`; everything else is passed through byte for byte.

The matcher is Aho-Corasick (one pass, no backtracking): work is linear in the output,
building is linear in the registered bytes (and asks `stop()` as it goes), memory is the
automaton plus at most one longest piece of carry per stream.  A stream holds back only a
tail that could still grow into a value; the caller may release it after --mask-delay
(`flush`), and the automaton keeps its state, so the rest of a value that completes
after that is still masked.
"""

import _thread  # a lock without importing threading (start-up cost)

from shim.errors import ShimError, set_redactor

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterator, TypeVar

    Text = TypeVar("Text", str, bytes)

MASK = b"***"
MIN_LENGTH = 2  # a one-character value would mask every occurrence of that character
LINE_MIN = 8  # lines of a multi-line value shorter than this are masked only with it
MAX_PIECE = 4096  # longer values are masked as pieces of this size
BUDGET = 1 << 20  # bytes of pieces in one automaton (bounds its memory and build time)
FAST_VALUES = 16  # up to this many pieces, large chunks are pre-checked with bytes.find
STOP_EVERY = 1 << 15  # nodes between two stop checks while building


class Interrupted(Exception):
    """`stop()` said yes while the automaton was being built."""


def to_bytes(value: object) -> bytes:
    """The bytes a value appears as in output: text as UTF-8, numbers and booleans as
    their JSON text (what a variable or file receives), bytes as they are."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    import json

    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def pieces(raw: bytes) -> "list[bytes]":
    """The byte strings that mask one value (see the module docstring); [] if too short."""
    return list(iter_pieces(raw))


def iter_pieces(raw: bytes) -> "Iterator[bytes]":
    """pieces(), lazily: the whole value first, so a full budget stops the work early."""
    value = raw.rstrip(b"\r\n")
    if len(value) < MIN_LENGTH:
        return
    yield from _cut(value)
    if b"\n" in value:
        for line in value.split(b"\n"):
            line = line.strip()
            if len(line) >= LINE_MIN and line != value:
                yield from _cut(line)
    if value[:1] == b"{":
        yield from _json_leaves(value)


def _cut(value):
    """The value, or its MAX_PIECE-byte pieces (lazily: a full budget stops the cutting)."""
    if len(value) <= MAX_PIECE:
        yield value
        return
    end = len(value)
    if end % MAX_PIECE and end % MAX_PIECE < MIN_LENGTH:  # a too short last piece joins
        end -= end % MAX_PIECE                            # the one before
    for a in range(0, end, MAX_PIECE):
        yield value[a:a + MAX_PIECE] if a + MAX_PIECE < end else value[a:]


def _json_leaves(value):
    """String and number leaves of a JSON object document (booleans and null are not
    secret-shaped: masking `true` everywhere would only hide output)."""
    if len(value) > BUDGET:
        return []
    import json

    try:
        doc = json.loads(value, parse_float=_Number, parse_int=_Number)
    except (ValueError, RecursionError):
        return []
    out, stack = [], [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack += node.values()
        elif isinstance(node, list):
            stack += node
        elif isinstance(node, str):
            raw = node.encode("utf-8", "surrogateescape").rstrip(b"\r\n")
            if len(raw) >= MIN_LENGTH:
                out += _cut(raw)
    return out


class _Number(str):
    """A JSON number kept as its text."""


class Masker:
    """The registry of values to mask, and the automaton over them.

    `add` (a --mask-env value: refused if too short) and `add_secret` (anything fetched
    or a credential: a too short one is counted, not refused) may be called from any
    thread; `build()` makes the new values effective (streams pick the new automaton up
    at their next write); `scrub` builds first when values are waiting.
    """

    def __init__(self, budget=BUDGET):
        self.budget = budget
        self._pieces = {}  # piece -> None, in registration order
        self._size = 0
        self.short = 0  # fetched values too short to mask
        self.left_out = 0  # bytes beyond the budget
        self._left_out_seen = set()
        self._dirty = False
        self._automaton = None
        self._lock = _thread.allocate_lock()
        self._build_lock = _thread.allocate_lock()

    def add(self, value: object, what: str = "mask value") -> None:
        """Register `value`; ShimError (exit 125) for a value shorter than MIN_LENGTH bytes.

        `what` names where it came from (a variable's name), never the value.
        """
        raw = to_bytes(value)
        if len(raw.rstrip(b"\r\n")) < MIN_LENGTH:
            raise ShimError("mask", what, f"a value of {len(raw)} byte(s) would mask every "
                            "occurrence of it in the output",
                            f"mask only values of at least {MIN_LENGTH} bytes")
        self.add_secret(raw)

    def add_secret(self, value: object) -> bool:
        """Register a fetched value or a credential (str, bytes, number, boolean).
        Returns False when it is too short to be masked (counted in `short`)."""
        if value is None or value == "" or value == b"":
            return True  # nothing to mask
        raw = to_bytes(value)
        if self._size >= self.budget - MIN_LENGTH:  # full: count it once, cut nothing
            self._leave_out(raw, len(raw))
            return True
        if len(raw.rstrip(b"\r\n")) < MIN_LENGTH:
            with self._lock:
                self.short += 1
            return False
        added = dropped = 0
        with self._lock:
            for piece in iter_pieces(raw):
                if piece in self._pieces:
                    continue
                if self._size + len(piece) > self.budget:
                    dropped += len(piece)
                    if self._size >= self.budget - MIN_LENGTH:
                        dropped = max(len(raw) - added, dropped)  # full: the rest too
                        break
                    continue
                self._pieces[piece] = None
                self._size += len(piece)
                added += len(piece)
                self._dirty = True
        if dropped:
            self._leave_out(raw, dropped)
        return True

    def _leave_out(self, raw, size) -> None:
        """Count bytes beyond the budget once per value (a value is registered by every
        target it reaches)."""
        key = (len(raw), raw[:64], raw[-64:])  # cheap: the value may be 64 MiB
        with self._lock:
            if key not in self._left_out_seen:
                self._left_out_seen.add(key)
                self.left_out += size

    def clear(self) -> None:
        """Forget every value (one process runs one pipeline; in-process tests run many)."""
        with self._build_lock, self._lock:
            self._pieces, self._size, self.short, self.left_out = {}, 0, 0, 0
            self._left_out_seen = set()
            self._dirty, self._automaton = False, None

    def __bool__(self):
        return bool(self._pieces)

    def __len__(self):
        return len(self._pieces)

    def warnings(self) -> "list[str]":
        """What is not masked, as messages (none when everything is)."""
        out = []
        if self.short:
            out.append(f"mask secrets: {self.short} value(s) shorter than {MIN_LENGTH} bytes "
                       "are not masked (they would mask every occurrence of a character)")
        if self.left_out:
            out.append(f"mask secrets: {self.left_out} bytes of values beyond the "
                       f"{self.budget >> 20} MiB masking budget are not masked; print less "
                       "secret data, or mask only what the output can show")
        return out

    def build(self, stop: "Callable[[], bool] | None" = None) -> "Automaton":
        """Make every registered value effective; `stop()` is asked every STOP_EVERY nodes
        (Interrupted when it says yes).  Returns the automaton."""
        with self._build_lock:
            with self._lock:
                dirty, values = self._dirty, list(self._pieces)
                self._dirty = False
            if dirty or self._automaton is None:
                try:
                    self._automaton = Automaton(values, stop)
                except Interrupted:
                    with self._lock:
                        self._dirty = True
                    raise
            return self._automaton

    @property
    def automaton(self) -> "Automaton":
        return self._automaton if self._automaton is not None else self.build()

    @property
    def longest(self) -> int:
        return self.automaton.longest

    def stream(self) -> "StreamMask":
        return StreamMask(self)

    def scrub(self, data: "Text") -> "Text":
        """Mask complete occurrences in `data` (a whole message: no carry).  str in, str out."""
        if not self._pieces:
            return data
        if isinstance(data, str):
            raw = data.encode("utf-8", "surrogateescape")
            return self.scrub(raw).decode("utf-8", "surrogateescape")
        if self._dirty or self._automaton is None:
            # Not built yet (or being rebuilt): a message never waits for a build, which
            # could take a second and must not delay the error that a stop signal ends with.
            return scrub_plain(data, list(self._pieces))
        s = self.stream()
        return s.feed(data) + s.flush()


def scrub_plain(data: bytes, values: "list[bytes]") -> bytes:
    """The same result as the automaton, by plain search (bytes.find per value): for short
    texts such as messages, O(len(values) * len(data)) at C speed and no build."""
    spans = []
    for v in values:
        i = data.find(v)
        while i >= 0:
            spans.append((i, i + len(v) - 1))
            i = data.find(v, i + 1)
    if not spans:
        return data
    out, cursor, group = bytearray(), 0, None
    for start, end in sorted(spans):
        if group is not None and start <= group[1]:
            group[1] = max(group[1], end)
            continue
        if group is not None:
            out += data[cursor:group[0]] + MASK
            cursor = group[1] + 1
        group = [start, end]
    assert group is not None  # spans is not empty
    out += data[cursor:group[0]] + MASK
    return bytes(out + data[group[1] + 1:])


class Automaton:
    """Aho-Corasick over byte strings, in flat arrays (memory ~10 bytes per node).

    A node's only child is stored as `chain[node]` (the byte; the child is node + 1, as
    a piece's fresh nodes are created in a row); a node with several children has a dict
    in `branch`.  `fail` is the failure link, `out` the length of the longest piece that
    ends at the node (0: none), `depth` the node's distance from the root.
    """

    def __init__(self, values, stop=None):
        from array import array  # only when output is masked (it imports collections.abc)

        self.chain = array("h", [-1])
        self.branch: dict = {}
        self.depth = array("i", [0])
        self.out = array("i", [0])
        self.count = len(values)
        self.longest = max(map(len, values), default=0)
        self.values = values if len(values) <= FAST_VALUES else None
        for value in values:
            self._insert(value, stop)
        root = self.branch.get(0, {})
        if self.chain[0] >= 0:
            root = {self.chain[0]: 1}
        self.root = [root.get(c, 0) for c in range(256)]
        self.fail = array("i", bytes(4 * len(self.chain)))
        self._link(stop)
        # bytes.translate table: 1 for a byte that starts some value, else 0.
        self.starts = bytes(1 if self.root[c] else 0 for c in range(256))

    def _insert(self, value, stop) -> None:
        chain, branch, node = self.chain, self.branch, 0
        for i, c in enumerate(value):
            kids = branch.get(node)
            if kids is not None:
                nxt = kids.get(c)
            else:
                nxt = node + 1 if chain[node] == c else None
            if nxt is None:  # the rest of the value is a fresh chain: appended in bulk
                self._grow(node, value, i, kids, stop)
                return
            node = nxt
        self.out[node] = len(value)

    def _grow(self, node, value, i, kids, stop):
        """Nodes for value[i:] below `node`: node n's only child is n + 1."""
        chain, first, rest = self.chain, len(self.chain), len(value) - i
        c = value[i]
        if kids is not None:
            kids[c] = first
        elif chain[node] >= 0:  # a second child: the node becomes a branch
            self.branch[node] = {chain[node]: node + 1, c: first}
            chain[node] = -1
        elif first == node + 1:
            chain[node] = c
        else:
            self.branch[node] = {c: first}
        chain.extend(value[i + 1:])
        chain.append(-1)
        depth = self.depth[node]
        self.depth.extend(range(depth + 1, depth + 1 + rest))
        self.out.extend(bytes(rest))  # rest zeros
        self.out[-1] = len(value)
        if stop is not None and first // STOP_EVERY != len(chain) // STOP_EVERY and stop():
            raise Interrupted()

    def _children(self, node):
        kids = self.branch.get(node)
        if kids is not None:
            return kids.items()
        c = self.chain[node]
        return ((c, node + 1),) if c >= 0 else ()

    def goto(self, node: int, c: int) -> "int | None":
        kids = self.branch.get(node)
        if kids is not None:
            return kids.get(c)
        return node + 1 if self.chain[node] == c else None

    def _link(self, stop):
        """Failure links breadth first (each node's link is shallower, so already set).
        The child lookups are written out: this loop runs once per node."""
        fail, out, chain, branch, root = self.fail, self.out, self.chain, self.branch, self.root
        queue = [child for _, child in self._children(0)]
        i = 0
        while i < len(queue):
            node = queue[i]
            i += 1
            if stop is not None and i % STOP_EVERY == 0 and stop():
                raise Interrupted()
            kids = branch.get(node)
            if kids is None:
                c = chain[node]
                if c < 0:
                    continue
                kids = ((c, node + 1),)
            else:
                kids = kids.items()
            for c, child in kids:
                f = fail[node]
                while True:
                    if f == 0:
                        nxt = root[c] or None
                    else:
                        fk = branch.get(f)
                        if fk is not None:
                            nxt = fk.get(c)
                        else:
                            nxt = f + 1 if chain[f] == c else None
                    if nxt is not None:
                        fail[child] = nxt
                        break
                    if f == 0:
                        break
                    f = fail[f]
                if not out[child]:
                    out[child] = out[fail[child]]
                queue.append(child)


class StreamMask:
    """One stream's masking state: `feed(chunk)` -> bytes safe to emit now; `flush()` the
    rest.  Holds back at most the automaton's depth (the longest value) of raw bytes.

    `work` counts automaton steps (bytes walked plus failure links followed) and
    `scanned` the bytes pre-checked by `bytes.find`: the fuzz tier checks that both stay
    linear in the output.
    """

    def __init__(self, masker):
        self.masker = masker
        self.auto = masker.automaton
        self.state = 0
        self.pos = 0  # absolute offset of the next byte
        self.out_pos = 0  # output is decided up to here; buf holds [out_pos, pos)
        self.buf = bytearray()
        self.mask_end = -1  # last byte of the latest *** already written
        self.runs = []  # [start, end] of matches not yet written, in order, disjoint
        self.work = 0
        self.scanned = 0

    @property
    def carry(self) -> bytes:
        return bytes(self.buf)

    def feed(self, chunk: bytes) -> bytes:
        auto = self.masker.automaton
        if auto is not self.auto:  # values were added (refresh): go on with the new set
            self._rebase(auto)
        if not chunk:
            return b""
        if self._quiet(chunk):
            self.buf += chunk
        else:
            self._walk(chunk)
        return self._emit(self.pos - self.auto.depth[self.state])

    def flush(self) -> bytes:
        """Emit what is held (after --mask-delay, and at the end of the stream).  The
        automaton keeps its state: a value completed by the next write is still masked."""
        return self._emit(self.pos)

    # -- matching ------------------------------------------------------------------
    def _walk(self, chunk) -> None:
        a = self.auto
        self.buf += chunk
        marks = chunk.translate(a.starts)
        if marks.count(1) * 8 < len(marks):  # few bytes can start a value: jump between them
            self._skip_walk(chunk, marks)
            return
        root, branch, chain, fail, out = a.root, a.branch, a.chain, a.fail, a.out
        s, pos, hops = self.state, self.pos, 0
        for c in chunk:
            if s == 0:
                s = root[c]
            else:
                while True:
                    kids = branch.get(s)
                    if kids is not None:
                        nxt = kids.get(c)
                        if nxt is not None:
                            s = nxt
                            break
                    elif chain[s] == c:
                        s += 1
                        break
                    hops += 1
                    s = fail[s]
                    if s == 0:
                        s = root[c]
                        break
            if out[s]:
                self._match(pos - out[s] + 1, pos)
            pos += 1
        self.state, self.pos = s, pos
        self.work += len(chunk) + hops

    def _skip_walk(self, chunk, marks) -> None:
        """The same walk, but at the root it jumps (bytes.find) to the next byte that can
        start a value: text that rarely looks like a value costs a few C calls.  The goto
        step is written out in both walks on purpose: a call per output byte would cost more
        than the walk itself in this loop."""
        a = self.auto
        root, branch, chain, fail, out = a.root, a.branch, a.chain, a.fail, a.out
        s, pos, hops, steps = self.state, self.pos, 0, 0
        i, n = 0, len(chunk)
        while i < n:
            c = chunk[i]
            if s == 0:
                if not marks[i]:
                    j = marks.find(1, i)
                    if j < 0:
                        pos += n - i
                        break
                    pos += j - i
                    i = j
                    c = chunk[i]
                s = root[c]
            else:
                while True:
                    kids = branch.get(s)
                    if kids is not None:
                        nxt = kids.get(c)
                        if nxt is not None:
                            s = nxt
                            break
                    elif chain[s] == c:
                        s += 1
                        break
                    hops += 1
                    s = fail[s]
                    if s == 0:
                        s = root[c]
                        break
            steps += 1
            if out[s]:
                self._match(pos - out[s] + 1, pos)
            pos += 1
            i += 1
        self.state, self.pos = s, pos
        self.work += steps + hops
        self.scanned += n

    def _quiet(self, chunk) -> bool:
        """For few values and a large chunk: when no value occurs in held + chunk (C-speed
        find), only the tail decides the new state, so only the tail is walked."""
        a = self.auto
        if a.values is None or len(chunk) <= 4 * a.longest or a.depth[self.state] > len(self.buf):
            return False
        data = bytes(self.buf) + chunk
        self.scanned += len(data) * len(a.values)
        if any(v in data for v in a.values):
            return False
        tail = data[len(data) - (a.longest - 1):] if a.longest > 1 else b""
        self.state, self.pos = 0, self.pos + len(chunk)
        self.work += len(tail)
        s = 0
        for c in tail:
            while s and a.goto(s, c) is None:
                s = a.fail[s]
            s = a.goto(s, c) or 0
        self.state = s
        return True

    def _match(self, start, end) -> None:
        if self.mask_end >= start and self.mask_end + 1 >= self.out_pos:
            # overlaps the *** written last, with nothing released after it: it grows
            self.mask_end = end
            self.runs.clear()  # every pending run lies inside [start, end]
            return
        start = max(start, self.out_pos)  # bytes released by flush() stay released
        runs = self.runs
        while runs and runs[-1][1] >= start:
            start = min(start, runs.pop()[0])
        runs.append([start, end])

    def _rebase(self, auto) -> None:
        """A new automaton: its state is found by walking the held bytes from the root."""
        self.auto, self.state = auto, 0
        held, self.buf, self.pos = bytes(self.buf), bytearray(), self.out_pos
        if held:
            self._walk(held)

    # -- output ----------------------------------------------------------------------
    def _emit(self, final):
        """Bytes before `final` can no longer become part of a match: write them, each
        run of matched bytes as one ***."""
        out = bytearray()
        cursor, buf0 = self.out_pos, self.out_pos
        if self.mask_end >= cursor:  # inside the *** written last
            cursor = min(self.mask_end + 1, self.pos)
        while self.runs and self.runs[0][0] < final:
            start, end = self.runs.pop(0)
            out += self.buf[cursor - buf0:start - buf0]
            out += MASK
            self.mask_end = end
            cursor = min(end + 1, self.pos)
        if cursor < final:
            out += self.buf[cursor - buf0:final - buf0]
            cursor = final
        if cursor > buf0:
            del self.buf[:cursor - buf0]
            self.out_pos = cursor
        return bytes(out)


# The process-wide registry: shim.sources.base.register feeds it, shim.errors.redact
# applies it to every message and record.
REGISTRY = Masker()
set_redactor(REGISTRY.scrub)
