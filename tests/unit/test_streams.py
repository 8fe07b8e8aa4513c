"""Unit tier for shim/streams: masking with a carry, records, sink URLs, sink buffers, rotation."""

import json
import threading

import pytest

from shim.errors import EXIT_USAGE, ShimError
from shim.streams import sinks
from shim.streams.records import Recorder, auto_labels, check_labels
from shim.streams.sinks.base import Sink
from shim.streams.sinks.file import FileSink
from shim.util.mask import Masker


# -- masking -------------------------------------------------------------------------------
def _masker(*values):
    m = Masker()
    for v in values:
        m.add(v)
    return m


def test_every_split_of_every_value_is_masked():
    m = _masker("hunter22", "s3cr3tvalue", "abc")
    data = b"x hunter22 y s3cr3tvalue abcabc z hunter2 s3cr3t"
    want = b"x *** y *** ****** z hunter2 s3cr3t"
    for a in range(len(data) + 1):
        for b in range(a, len(data) + 1):
            s = m.stream()
            out = s.feed(data[:a]) + s.feed(data[a:b]) + s.feed(data[b:]) + s.flush()
            assert out == want, (a, b)


def test_longest_value_wins_and_carry_is_only_a_possible_prefix():
    m = _masker("abc", "abcdef")
    s = m.stream()
    assert s.feed(b"xx abcde") == b"xx "  # could still become abcdef
    assert s.feed(b"f yy") == b"*** yy"
    assert s.flush() == b""


def test_carry_is_released_by_flush():
    s = _masker("secret").stream()
    assert s.feed(b"see sec") == b"see "
    assert s.flush() == b"sec"  # after --mask-delay: output is never held longer


@pytest.mark.parametrize("value", ["", "x", b"\n"])
def test_empty_and_one_character_values_are_refused(value):
    with pytest.raises(ShimError) as err:
        Masker().add(value, "variable V")
    assert err.value.code == EXIT_USAGE and "variable V" in err.value.message()
    assert "\n" not in err.value.message()


def test_value_with_trailing_newline_also_masked_without_it():
    m = _masker("tok3n\n")
    assert m.scrub(b"a tok3n b") == b"a *** b"


# -- records ---------------------------------------------------------------------------------
def _decode(records):
    return [json.loads(r) for r in records]


def test_records_lines_partial_binary_and_labels():
    r = Recorder({"app": "x"}, max_line=8, wall=lambda: 0.0)
    out = _decode(r.feed("stdout", b"hello\n\xff\xfe\nabcdefghijk\nend"))
    out += _decode(r.flush("stdout"))
    assert [(o.get("line"), o.get("line_b64"), o.get("partial", False)) for o in out] == [
        ("hello", None, False), (None, "//4=", False), ("abcdefgh", None, True),
        ("ijk", None, False), ("end", None, True)]
    assert [o["seq"] for o in out] == [1, 2, 3, 4, 5]
    assert all(o["app"] == "x" and o["stream"] == "stdout" for o in out)
    assert out[0]["ts"] == "1970-01-01T00:00:00.000000Z"


def test_split_never_cuts_a_utf8_sequence():
    r = Recorder(max_line=4)
    out = _decode(r.feed("stdout", "abcé\n".encode()))
    assert [o["line"] for o in out] == ["abc", "é"]


def test_unfinished_line_of_exactly_max_line_bytes():
    r = Recorder(max_line=4)
    assert [o["line"] for o in _decode(r.feed("stdout", b"abcd"))] == ["abcd"]
    assert not r.pending("stdout")


def test_long_unfinished_line_is_split_before_its_newline():
    r = Recorder(max_line=4)
    assert _decode(r.feed("stderr", b"0123456789")) and r.pending("stderr")


def test_auto_labels_from_downward_api():
    env = {"SHIM_RUNTIME": "kubernetes", "POD_NAME": "p-1", "POD_NAMESPACE": "ns",
           "CONTAINER_NAME": "app"}
    assert auto_labels(env) == {"runtime": "kubernetes", "pod": "p-1", "namespace": "ns",
                                "container": "app"}
    assert auto_labels({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, hostname="pod-x") == \
        {"pod": "pod-x"}
    with pytest.raises(ShimError):
        check_labels({"seq": "1"})


# -- sink URLs -------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["foo://x", "tcp://host", "tcp://:1", "udp://h:notaport",
                                 "file://relative", "file:///x?max_bytes=lots", "unix://host/x",
                                 "http://", "file:///x?colour=red", "nonsense", "tcp://h:99999"])
def test_unparseable_sink_urls_are_one_line_usage_errors(url):
    with pytest.raises(ShimError) as err:
        sinks.parse(url)
    assert err.value.code == EXIT_USAGE
    assert "\n" not in err.value.message()


def test_sink_names_hide_credentials_and_queries():
    s = sinks.parse("https://user:pw@logs.example:8443/in?token_file=/run/t")
    assert s.name == "https://logs.example:8443/in"
    f = sinks.parse("file:///var/log/x.jsonl?max_bytes=1k&backups=2")
    assert (f.path, f.max_bytes, f.backups) == ("/var/log/x.jsonl", 1024, 2)


# -- sink buffers ----------------------------------------------------------------------------
class _Held(Sink):
    """A sink whose delivery waits for the test to release it (a recording fake)."""

    def __init__(self, **kw):
        super().__init__("tcp://fake:1", **kw)
        self.release = threading.Event()
        self.got = []

    def deliver(self, batch):
        self.release.wait()
        self.got.extend(batch[self.done:])
        self.done = len(batch)


def test_full_buffer_drops_and_counts_without_waiting():
    s = _Held(limit=10, overflow="drop")
    s.start()
    assert s.put([b"12345"], 5) and s.put([b"12345"], 5)
    assert not s.put([b"x", b"y"], 2)
    assert s.dropped == 2
    s.release.set()
    import time

    s.close(time.monotonic() + 5)
    assert s.got == [b"12345", b"12345"] and s.records == 2 and s.dropped == 2


def test_block_mode_holds_a_full_healthy_sink_and_never_waits_in_put():
    s = _Held(limit=4, overflow="block")
    assert s.put([b"1234"], 4) and s.holding()  # full: the caller stops reading its pipes
    assert s.put([b"5"], 1) and s.dropped == 0  # a put that was already read is kept
    s.down = True  # a sink that is down never holds: it drops what does not fit
    assert not s.holding() and not s.put([b"6"], 1) and s.dropped == 1


def test_a_sink_held_too_long_degrades_until_drained_to_half():
    s = _Held(limit=4, overflow="block", block_limit=2.0)
    s.put([b"1234"], 4)
    s.degrade()
    assert not s.holding() and not s.put([b"5"], 1) and s.dropped == 1
    s.start()
    s.release.set()  # it drains: holding again when it fills next time
    s.close(__import__("time").monotonic() + 5)
    assert s.size == 0 and not s._degraded and s.full_since is None


def test_drop_mode_never_holds():
    s = _Held(limit=4, overflow="drop")
    assert s.put([b"1234"], 4) and not s.holding()
    assert not s.put([b"5"], 1) and s.dropped == 1


def test_close_counts_undelivered_as_dropped():
    import time

    s = _Held(limit=100)
    s.start()
    s.put([b"a", b"b"], 2)
    s.close(time.monotonic() + 0.05)
    assert s.dropped == 2 and s.records == 0


def test_file_sink_rotates_by_size(tmp_path):
    path = tmp_path / "x.jsonl"
    s = FileSink(f"file://{path}", str(path), max_bytes=12, backups=2)
    s.connect()
    batch = [b"%05d\n" % i for i in range(7)]
    s.deliver(batch)
    s.disconnect()
    assert path.read_bytes() == b"00006\n"  # 7 records of 6 bytes, two per file
    assert (tmp_path / "x.jsonl.1").read_bytes() == b"00004\n00005\n"
    assert (tmp_path / "x.jsonl.2").read_bytes() == b"00002\n00003\n"
    assert not (tmp_path / "x.jsonl.3").exists()


def test_an_empty_buffer_takes_a_put_larger_than_the_limit():
    s = _Held(limit=4, overflow="drop")
    assert s.put([b"123456789"], 9)  # one chunk's records may exceed a small --log-buffer
    assert not s.put([b"x"], 1) and s.dropped == 1


# -- capture's hold policy (recording fakes, a fake clock: no sleeping) ----------------------
class _FakeLoop:
    def __init__(self):
        self.now, self.readers, self.timers = 0.0, set(), []

    def time(self):
        return self.now

    def add_reader(self, fd, callback):
        self.readers.add(fd)

    def remove_reader(self, fd):
        self.readers.discard(fd)

    def call_at(self, when, callback):
        timer = _FakeTimer(when, callback)
        self.timers.append(timer)
        return timer


class _FakeTimer:
    def __init__(self, when, callback):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self):
        self.cancelled = True


class _FakeSink:
    def __init__(self, block_limit=5.0):
        self.full, self.degraded, self.held_s = True, False, 0.0
        self.full_since, self.block_limit = 0.0, block_limit

    def holding(self):
        return self.full and not self.degraded

    def degrade(self):
        self.degraded = True


def _capture_with(sink):
    from shim.streams.capture import Capture

    capture = Capture({1}, sinks=[sink])
    capture.loop = _FakeLoop()
    st = capture.streams[0]
    st.read_fd = 99
    capture._resume(st)
    return capture, capture.loop


def test_a_full_healthy_sink_pauses_reading_until_it_has_room():
    sink = _FakeSink()
    capture, loop = _capture_with(sink)
    assert loop.readers == {99}
    capture._check_hold()
    assert loop.readers == set()  # the delegate now waits in write(), nothing is dropped
    loop.now = 1.5
    sink.full = False  # the writer thread made room and told the loop
    capture._check_hold()
    assert loop.readers == {99} and sink.held_s == 1.5 and not sink.degraded


def test_a_sink_held_past_its_limit_is_degraded_and_reading_resumes():
    sink = _FakeSink(block_limit=5.0)
    capture, loop = _capture_with(sink)
    capture._check_hold()
    timer = [t for t in loop.timers if not t.cancelled][-1]
    assert timer.when == 5.0  # wakes exactly when the limit is reached
    loop.now = timer.when
    timer.callback()
    assert sink.degraded and loop.readers == {99} and sink.held_s == 5.0
