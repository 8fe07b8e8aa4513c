"""Policy of the fetch phase with fake sources: concurrency, dedupe, optional/default,
fail closed, deadline, cancellation, masking list.  Nothing sleeps longer than a poll."""

import threading

import pytest

from shim.errors import EXIT_FETCH, ShimError
from shim.sources import fetch as fetchmod
from shim.sources.base import SourceError
from shim.sources.fetch import Item, fetch_all, secret_values
from shim.sources.refs import parse


class FakeSource:
    """Records what it was asked; values by path; `fail` maps path -> cause."""

    def __init__(self, values=None, fail=None, gate=None):
        self.values = values or {}
        self.fail = fail or {}
        self.gate = gate
        self.asked = []
        self.lock = threading.Lock()

    def fetch(self, ref, ctx):
        with self.lock:
            self.asked.append(ref.path)
        if self.gate is not None:
            self.gate.wait(5)
        if ref.path in self.fail:
            raise SourceError(self.fail[ref.path])
        return self.values[ref.path]


@pytest.fixture
def fake(monkeypatch):
    src = FakeSource()
    monkeypatch.setattr(fetchmod, "source_module", lambda scheme: src)
    return src


def items(*texts, **kw):
    return [Item(parse(t), f"env X{i}", **kw) for i, t in enumerate(texts)]


def test_values_in_item_order_with_pointer_and_dedupe(fake):
    fake.values = {"secret/a": {"user": "u", "pw": "p"}, "secret/b": '{"k": ["x", "y"]}'}
    res = fetch_all(items("ref+vault://secret/a#/pw", "ref+vault://secret/b#/k/1",
                          "ref+vault://secret/a#/pw", "ref+vault://secret/a"), env={})
    assert [r.value for r in res] == ["p", "y", "p", {"user": "u", "pw": "p"}]
    assert sorted(fake.asked) == ["secret/a", "secret/a", "secret/b"]  # same ref once


def test_fetches_run_concurrently(monkeypatch):
    """Every fetch blocks until all have started: only concurrency can finish this."""
    n = 8
    barrier = threading.Barrier(n, timeout=5)

    class Src:
        @staticmethod
        def fetch(ref, ctx):
            barrier.wait()
            return "v"
    monkeypatch.setattr(fetchmod, "source_module", lambda scheme: Src)
    res = fetch_all(items(*[f"ref+vault://s/{i}" for i in range(n)]), env={})
    assert [r.value for r in res] == ["v"] * n


def test_fail_closed_names_ref_source_cause_not_value(fake):
    fake.values = {"secret/ok": "the-value-123"}
    fake.fail = {"secret/bad": "HTTP 403: permission denied"}
    with pytest.raises(ShimError) as info:
        fetch_all(items("ref+vault://secret/ok", "ref+vault://secret/bad"), env={})
    err = info.value
    assert err.code == EXIT_FETCH == 117 and err.reason == "fetch-failed"
    assert err.message() == ("fetch ref+vault://secret/bad (vault, for env X1): HTTP 403: "
                             "permission denied; check the reference, the credentials and the "
                             "server")
    assert "the-value-123" not in err.message()


def test_optional_uses_default_or_is_left_out(fake):
    fake.fail = {"secret/a": "HTTP 404: not found", "secret/b": "HTTP 404: not found"}
    logged = []
    res = fetch_all([Item(parse("ref+vault://secret/a"), "env A", optional=True, default="dflt"),
                     Item(parse("ref+vault://secret/b"), "env B", optional=True)],
                    env={}, log=logged.append)
    assert [r.value for r in res] == ["dflt", None]
    assert len(logged) == 2 and "HTTP 404" in logged[0]


def test_pointer_selecting_nothing_or_not_json(fake):
    fake.values = {"s/a": {"x": 1}, "s/b": "plain text"}
    with pytest.raises(ShimError, match="fragment #/y selects nothing"):
        fetch_all(items("ref+vault://s/a#/y"), env={})
    with pytest.raises(ShimError, match="not JSON"):
        fetch_all(items("ref+vault://s/b#/y"), env={})


def test_deadline(fake):
    fake.gate = threading.Event()
    fake.values = {"s/a": "v"}
    with pytest.raises(ShimError) as info:
        fetch_all(items("ref+vault://s/a"), env={}, deadline=0.1)
    fake.gate.set()
    assert "not finished within the 0.1s fetch deadline" in str(info.value)
    assert "--fetch-deadline" in str(info.value)


def test_cancelled_stops_promptly(fake):
    fake.gate = threading.Event()
    fake.values = {"s/a": "v"}
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    with pytest.raises(ShimError) as info:
        fetch_all(items("ref+vault://s/a"), env={}, deadline=30, cancelled=flag.is_set)
    fake.gate.set()
    assert info.value.reason == "interrupted"


def test_unexpected_exceptions_are_one_line_failures(fake):
    fake.values = {}
    with pytest.raises(ShimError, match="KeyError"):
        fetch_all(items("ref+vault://s/missing"), env={})


def test_secret_values_flattens_for_masking():
    item = Item(parse("ref+env://X"))
    res = [fetchmod.Result(item, "a"), fetchmod.Result(item, {"k": "b", "n": ["c", 1]}),
           fetchmod.Result(item, b"d"), fetchmod.Result(item, b"\xff"),
           fetchmod.Result(item, None), fetchmod.Result(item, "")]
    assert secret_values(res) == ["a", "b", "c", "d"]


def test_real_env_and_file_sources(tmp_path):
    (tmp_path / "c.json").write_text('{"db": {"port": "5432"}}')
    res = fetch_all(items("ref+env://HOMEX", f"ref+file://{tmp_path}/c.json#/db/port"),
                    env={"HOMEX": "/home/x"})
    assert [r.value for r in res] == ["/home/x", "5432"]
    with pytest.raises(ShimError, match="variable NOPE is not set"):
        fetch_all(items("ref+env://NOPE"), env={})
    with pytest.raises(ShimError, match="no such file"):
        fetch_all(items(f"ref+file://{tmp_path}/none"), env={})
