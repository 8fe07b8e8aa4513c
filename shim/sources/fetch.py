"""The fetch phase: resolve every reference concurrently, under one deadline, fail closed.

    results = fetch_all([Item(parse("ref+vault://secret/app#/password"), "env DB_PASSWORD")],
                        env=os.environ, deadline=60, cancelled=stop.is_set)

References that are local reads (ref+env, ref+file) are resolved inline, in order, with no
HTTP client and no thread.  Otherwise every item is fetched on a small pool of daemon
threads (threads are safe here: the spawn runs no Python between fork and exec, and a
thread blocked in a socket must not keep the process alive after a SIGTERM).  A reference
named by several items is fetched once.  The phase ends when all are done, when the
deadline passes, or as soon as `cancelled()` turns true (checked every 50 ms); a retry's
backoff sleep also wakes on it.

Fail closed: if any non-optional item failed, `fetch_all` raises ONE ShimError (exit 117,
reason fetch-failed) naming the first failing reference in item order, its source and the
cause; optional items fall back to their default (or are left out).  No value is ever put
in a message.  The caller writes targets only after `fetch_all` returned, so a failure
leaves nothing half-written, and registers `secret_values(results)` for masking.
"""

import os
import time

from shim.errors import EXIT_FETCH, REASON_FETCH_FAILED, REASON_INTERRUPTED, ShimError
from shim.sources import refs as _refs
from shim.sources.base import Context, SourceError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.net.http import Client
    from shim.sources.refs import Ref

DEFAULT_DEADLINE = 60.0
MAX_WORKERS = 16
POLL = 0.05

# ref+ scheme -> module under shim.sources, imported only when a reference needs it
SOURCE_MODULES = {
    "vault": "vault", "openbao": "vault",
    "awssecrets": "aws.secretsmanager", "awsssm": "aws.ssm", "s3": "aws.s3",
    "https": "httpconfig", "http": "httpconfig",
    "file": "file", "env": "env",
    "gcpsecrets": "gcp", "azurekeyvault": "azure",
}

# Schemes answered by a local read (no network client, no thread): a start whose references
# are all local resolves them inline and imports neither (issue 17's cold-start budget).
LOCAL_SCHEMES = frozenset({"env", "file"})

_MISSING = object()


class Item:
    """One reference to resolve: the ref, what it is for (for messages), optional, default."""

    __slots__ = ("ref", "label", "optional", "default")

    def __init__(self, ref, label="", optional=False, default=None):
        self.ref = ref
        self.label = label
        self.optional = optional
        self.default = default


class Result:
    """What an item resolved to: `value` (str, bytes, dict, list, number) or None when an
    optional item failed without a default (`error` then says why)."""

    __slots__ = ("item", "value", "error")

    def __init__(self, item, value, error=None):
        self.item = item
        self.value = value
        self.error = error


def source_module(scheme: str) -> "Any":
    # __import__ with a fromlist returns the submodule itself; importlib would be one more
    # module to load on every start that names a reference.
    return __import__("shim.sources." + SOURCE_MODULES[scheme], fromlist=["fetch"])


def fetch_one(ref: "Ref", ctx: "Context") -> "Any":
    """Fetch one reference and apply its JSON pointer; SourceError on any failure."""
    raw = source_module(ref.scheme).fetch(ref, ctx)
    if ref.pointer is None:
        return raw
    return pick(raw, ref.pointer)


def pick(raw: "Any", pointer: "tuple[str, ...]") -> "Any":
    """Apply a JSON pointer to a fetched value (a dict already, or JSON text/bytes)."""
    from shim.sources.base import json_loads
    doc = raw
    if isinstance(raw, (bytes, str)):
        try:
            doc = json_loads(raw)  # numbers keep their text
        except ValueError:
            raise SourceError("the value is not JSON, but the reference has a "
                              f"#{_refs.format_pointer(pointer)} fragment") from None
    try:
        node = _refs.select(doc, pointer)
        return "" if node is None else node  # null is an empty value, in every target
    except KeyError as err:  # the whole fragment as written, and where it stopped matching
        whole, at = _refs.format_pointer(pointer), err.args[0]
        raise SourceError(f"fragment #{whole} selects nothing" + ("" if at == whole else
                          f" (there is no #{at})"), missing=True) from None


def fetch_all(items: "list[Item]", env: "Mapping[str, str] | None" = None, deadline: float = DEFAULT_DEADLINE,
              cancelled: "Callable[[], bool] | None" = None, settings: "dict[str, Any] | None" = None,
              http: "Client | None" = None, store: "dict | None" = None,
              clock: "Callable[[], float]" = time.monotonic,
              log: "Callable[..., object] | None" = None) -> "list[Result]":
    """Resolve `items` concurrently; [Result] in item order, or ShimError (fail closed)."""
    env = os.environ if env is None else env
    cancelled = cancelled or (lambda: False)
    end = clock() + deadline
    from shim.sources import settings as source_settings
    source_settings.check([item.ref for item in items], env)  # malformed VAULT_ADDR...: 125
    unique = list(dict.fromkeys(item.ref for item in items))
    if http is None and all(ref.scheme in LOCAL_SCHEMES for ref in unique):
        return _fetch_local(items, unique, env, end, deadline, cancelled, settings, store, clock, log)
    import queue
    import threading

    stop = threading.Event()

    def is_cancelled() -> bool:
        return stop.is_set() or cancelled()

    if http is None:
        from shim.net.http import Client
        http = Client(env=env, cancelled=is_cancelled, sleep=stop.wait, clock=clock)
    ctx = Context(env, http, end, settings, clock=clock, store=store)
    ctx.refs = tuple(unique)
    outcomes = {}
    todo: queue.Queue = queue.Queue()
    for ref in unique:
        todo.put(ref)
    done = threading.Condition()

    def work() -> None:
        while not stop.is_set():
            try:
                ref = todo.get_nowait()
            except queue.Empty:
                return
            outcome = _attempt(ref, ctx)
            with done:
                outcomes[ref] = outcome
                done.notify()

    for _ in range(min(MAX_WORKERS, len(unique))):
        threading.Thread(target=work, name="shim-fetch", daemon=True).start()
    with done:
        while len(outcomes) < len(unique):
            if cancelled():
                stop.set()
                raise ShimError("fetch", "secrets", "interrupted by a signal",
                                reason=REASON_INTERRUPTED, code=EXIT_FETCH)
            left = end - clock()
            if left <= 0:
                stop.set()
                break
            done.wait(min(POLL, left))
    if len(outcomes) < len(unique):
        for ref in unique:
            outcomes.setdefault(ref, (False, f"not finished within the {deadline:g}s fetch "
                                             "deadline", False))
    http_close = getattr(http, "close", None)
    if http_close and not stop.is_set():
        http_close()
    return _results(items, outcomes, log)


def _attempt(ref, ctx):
    """(True, value) or (False, cause, missing) for one reference."""
    try:
        return (True, fetch_one(ref, ctx))
    except SourceError as err:
        return (False, err.cause, err.missing)
    except Exception as err:  # a bug or an unexpected reply: still one line
        return (False, f"{type(err).__name__}: {err}", False)


def _fetch_local(items, unique, env, end, deadline, cancelled, settings, store, clock, log):
    """Every reference is a local read: in order, on this thread, no HTTP client."""
    ctx = Context(env, None, end, settings, clock=clock, store=store)
    ctx.refs = tuple(unique)
    outcomes = {}
    for ref in unique:
        if cancelled():
            raise ShimError("fetch", "secrets", "interrupted by a signal",
                            reason=REASON_INTERRUPTED, code=EXIT_FETCH)
        if clock() >= end:
            outcomes[ref] = (False, f"not finished within the {deadline:g}s fetch deadline", False)
            continue
        outcomes[ref] = _attempt(ref, ctx)
    return _results(items, outcomes, log)


def _results(items, outcomes, log):
    results = []
    for item in items:
        ok, value, *missing = outcomes[item.ref]
        if ok:
            results.append(Result(item, value))
            continue
        # An item's own `optional` forgives any failure (as documented for secret items); the
        # reference's ?optional=/?default= only a missing object or key (never 403/TLS/timeout).
        forgiven = item.optional or (item.ref.tolerates_missing and missing and missing[0])
        if not forgiven:
            raise fetch_error(item, value)
        default = item.default if item.default is not None else item.ref.default
        if log is not None:
            log(f"optional {item.ref.display()} ({item.ref.source}) not fetched: {value}; "
                + ("using its default" if default is not None else "left out"))
        results.append(Result(item, default, value))
    return results


def fetch_error(item: "Item", cause: str) -> ShimError:
    """The one-line failure: reference, source, cause (never a value)."""
    fix = "check the reference, the credentials and the server"
    if "deadline" in cause:
        fix = "raise --fetch-deadline or check that the server answers"
    what = f"{item.ref.display()} ({item.ref.source}" + (f", for {item.label})" if item.label
                                                        else ")")
    return ShimError("fetch", what, cause, fix, reason=REASON_FETCH_FAILED)


def secret_values(results: "list[Result]") -> "list[str]":
    """Every string worth masking in the results: values, and the values inside dicts."""
    out = []

    def walk(value: object) -> None:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return
        if isinstance(value, str):
            if value:
                out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for result in results:
        if result.value is not None:
            walk(result.value)
    return out
