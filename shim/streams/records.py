"""Log records: the delegate's output as JSON lines.

One record per line: ``{"ts","stream","seq","line"}`` plus the labels
(`--log-label`, and `runtime`, `pod`, `namespace`, `container` when known).
A line that is not UTF-8 is carried losslessly as ``"line_b64"``; a line longer
than `--max-line` is split into pieces marked ``"partial":true`` (as is a last
line without a newline).  `seq` counts records across both streams in the order
shim read them.  Encoding is hand-assembled around the JSON string escaper: at
400k lines/s a dict per record plus a generic encoder is the bottleneck.
"""

import os
import time

try:  # optional fast path; the stdlib escaper below is the same JSON
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - depends on the build
    _orjson_dumps = None  # type: ignore[assignment]  # optional fast path absent

from json.encoder import encode_basestring as _escape  # C-accelerated, ensure_ascii off

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Mapping

RESERVED = ("ts", "stream", "seq", "line", "line_b64", "partial")
# Bytes a JSON string cannot carry as they are (controls, quote, backslash) or that need a
# UTF-8 check (non-ASCII).  Most log lines have none: they are quoted without decoding.
_PLAIN = __import__("re").compile(rb'[\x00-\x1f"\\\x80-\xff]').search


def quote(text: str) -> bytes:
    """A JSON string literal (bytes) for `text`."""
    if _orjson_dumps is not None:
        return _orjson_dumps(text)
    return _escape(text).encode("utf-8")


def auto_labels(environ: "Mapping[str, str]", hostname: "str | None" = None) -> "dict[str, str]":
    """Labels known without asking anyone: the runtime and the Kubernetes Downward API.

    Pod name/namespace come from the variables a pod spec conventionally maps with
    the Downward API (POD_NAME, POD_NAMESPACE, CONTAINER_NAME; also the KUBERNETES_*
    and MY_POD_* spellings); inside Kubernetes the hostname is the pod name.
    """
    labels = {}
    runtime = environ.get("SHIM_RUNTIME")
    if runtime:
        labels["runtime"] = runtime
    for key, names in (("pod", ("POD_NAME", "MY_POD_NAME", "KUBERNETES_POD_NAME")),
                       ("namespace", ("POD_NAMESPACE", "MY_POD_NAMESPACE",
                                      "KUBERNETES_NAMESPACE")),
                       ("container", ("CONTAINER_NAME", "KUBERNETES_CONTAINER_NAME"))):
        for name in names:
            if environ.get(name):
                labels[key] = environ[name]
                break
    if "pod" not in labels and environ.get("KUBERNETES_SERVICE_HOST"):
        labels["pod"] = hostname or os.uname().nodename
    return labels


def check_labels(labels: "Mapping[str, str]") -> None:
    """Refuse labels that would overwrite a record's own fields."""
    from shim.errors import usage_error
    from shim.util.text import show

    for key in labels:
        if key in RESERVED:
            raise usage_error("option --log-label", f"{show(key)} is a field of every record",
                              "choose another label name")


def iso_now(wall: "Callable[[], float]" = time.time) -> str:
    ts = wall()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


class Recorder:
    """Turns output chunks into encoded records.  Not thread-safe: the loop's thread owns it."""

    def __init__(self, labels=None, max_line=16384, wall=time.time):
        self.seq = 0
        self.max_line = max(1, max_line)
        self.wall = wall
        self.lines = 0
        self.bytes = 0
        tail = b"".join(b"," + quote(k) + b":" + quote(str(v)) for k, v in sorted(
            (labels or {}).items()))
        self._tail = tail + b"}\n"
        self._partial = {}

    def feed(self, stream: str, data: bytes) -> "list[bytes]":
        """Records (list of bytes, one JSON line each) for `data` read from `stream`."""
        pending = self._partial.pop(stream, b"")
        if pending:
            data = pending + data
        lines = data.split(b"\n")
        rest = lines.pop()  # after the last newline: an unfinished line
        out = []
        if lines:
            head = self._head(stream)
            out = self._encode(head, lines, False)
        while len(rest) >= self.max_line:  # split and mark what cannot wait for its newline
            piece, rest = self._cut(rest)
            out += self._encode(self._head(stream), [piece], True)
        if rest:
            self._partial[stream] = rest
        return out

    def flush(self, stream: str) -> "list[bytes]":
        """The unfinished last line of `stream` as a partial record (end of stream, timer)."""
        rest = self._partial.pop(stream, b"")
        return self._encode(self._head(stream), [rest], True) if rest else []

    def pending(self, stream: str) -> bool:
        return stream in self._partial

    def _cut(self, data):
        cut = self.max_line
        if cut < len(data):  # do not split a UTF-8 sequence: back up over continuation bytes
            for back in range(4):
                if cut - back > 0 and (data[cut - back] & 0xC0) != 0x80:
                    cut -= back
                    break
        return data[:cut], data[cut:]

    def _head(self, stream):
        return b'{"ts":"' + iso_now(self.wall).encode() + b'","stream":"' + stream.encode() + \
            b'","seq":'

    def _encode(self, head, lines, partial):
        max_line, plain, line_field = self.max_line, _PLAIN, self._line
        tail = (b',"partial":true' + self._tail) if partial else self._tail
        out: list = []
        append = out.append
        seq = self.seq
        for line in lines:  # the hot loop: one format per record, no dict, no generic encoder
            if len(line) > max_line:  # only on the newline path: split long complete lines
                while len(line) > max_line:
                    piece, line = self._cut(line)
                    seq += 1
                    append(b"%s%d%s,\"partial\":true%s" % (head, seq, line_field(piece),
                                                             self._tail))
            seq += 1
            if plain(line) is None:
                append(b'%s%d,"line":"%s"%s' % (head, seq, line, tail))
            else:
                append(b"%s%d%s%s" % (head, seq, line_field(line), tail))
        self.bytes += sum(map(len, lines))
        self.lines += seq - self.seq
        self.seq = seq
        return out

    @staticmethod
    def _line(raw):
        if _PLAIN(raw) is None:
            return b',"line":"' + raw + b'"'
        try:
            return b',"line":' + quote(raw.decode("utf-8"))
        except UnicodeDecodeError:
            from binascii import b2a_base64

            return b',"line_b64":"' + b2a_base64(raw, newline=False) + b'"'
