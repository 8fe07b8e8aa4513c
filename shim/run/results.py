"""What a run leaves behind: the result record, the termination message, post files.

The record is one JSON object (see README, "Result record").  Writing these files comes
after the delegate ran: a failure never changes the run's exit code (the pipeline warns and
counts it in `counters.write_failures`).  The termination
message is capped at 4096 bytes, Kubernetes' limit for terminationMessagePath;
a larger record is written in full next to it and the message points there.
"""

import os

from shim.errors import ShimError
from shim.util import jsonio
from shim.util.fsutil import atomic_write
from shim.util.text import iso  # noqa: F401  (records and the report share it)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.run.pipeline import Outcome

TERMINATION_LIMIT = 4096
RESULT_LIMIT = 1 << 20  # one result file is read up to 1 MiB
RECORD_VERSION = 1


def read_results(directory: "str | None") -> "dict[str, str]":
    """{name: text} for each regular file of `directory` (results written by the delegate)."""
    results: dict = {}
    if not directory:
        return results
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return results
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read(RESULT_LIMIT + 1)
        except OSError:
            continue
        text = data[:RESULT_LIMIT].decode("utf-8", "replace")
        results[name] = text.rstrip("\n") if len(data) <= RESULT_LIMIT else text
    return results


def build_record(outcome: "Outcome", phases: "dict[str, Any]", started: float, finished: float,
                 results: "dict[str, str]", counters: "dict[str, Any] | None" = None) -> "dict[str, Any]":
    """The result record as a dict (pure: everything comes in as arguments)."""
    record = {
        "version": RECORD_VERSION,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_ms": round((finished - started) * 1000, 3),
        "phases_ms": {name: round(seconds * 1000, 3) for name, seconds in phases.items()},
        "exit_code": outcome.exit_code,
        "delegate_exit_code": outcome.delegate_code,
        "signal": outcome.signal_name,
        "reason": outcome.reason,
        "error": outcome.error,
        "results": results,
    }
    if counters:  # log sinks (records, drops), statsd, heartbeat: only when they ran
        record["counters"] = counters
    return record


ERROR_CUT = 512  # the error's first characters kept in a shrunk message


def termination_message(record: "dict[str, Any]", spill_path: "str | None") -> "tuple[bytes, bytes | None]":
    """(message bytes, spill bytes or None): the record, or a short one pointing at the spill.

    Always at most TERMINATION_LIMIT bytes.  Shrinking goes by levels: drop the results
    (`results_file` names the spill, `results_truncated` counts what was dropped: always a
    number); then cut `error` to 512 characters, then drop it; then, if the spill path
    alone is too long to quote, set `results_file` to null.
    """
    full = jsonio.dumps(record)
    if len(full) <= TERMINATION_LIMIT:
        return full, None
    short = {k: v for k, v in record.items() if k != "results"}
    short["results_file"] = spill_path
    short["results_truncated"] = len(record.get("results") or {})
    for level in range(4):
        if level in (1, 2) and short.get("error"):
            short["error"] = short["error"][:ERROR_CUT if level == 1 else 0] or None
        if level == 3:
            short["results_file"] = None
        message = jsonio.dumps(short)
        if len(message) <= TERMINATION_LIMIT:
            return message, full
    # Unreachable with shim's own records (every remaining field is small); kept so the
    # limit holds even for a record built by a future caller.
    return jsonio.dumps({"version": record.get("version"), "exit_code": record.get("exit_code"),
                         "reason": record.get("reason"), "results_file": None,
                         "results_truncated": short["results_truncated"]}), full


def write_record(record: "dict[str, Any]", result_file: "str | None",
                 termination_path: "str | None") -> "list[ShimError]":
    """Write the record where configured; [ShimError] of the writes that failed.

    One failure does not stop the other write, and the termination message written after a
    failed result file counts it (`counters.write_failures`): the message is then the one
    place that says the result file is missing."""
    failures = []
    if result_file:
        try:
            atomic_write(result_file, jsonio.dumps(record, indent=True) + b"\n",
                         what="result file")
        except ShimError as err:
            failures.append(err)
            count_write_failure(record)
    if termination_path:
        spill_path = termination_path + ".full.json"
        message, spill = termination_message(record, spill_path)
        try:
            if spill is not None:
                atomic_write(spill_path, spill, what="result spill file")
            atomic_write(termination_path, message, what="termination message")
        except ShimError as err:
            failures.append(err)
    return failures


def count_write_failure(record: "dict[str, Any]") -> None:
    counters = dict(record.get("counters") or {})  # the run's own dict is counted by the run
    counters["write_failures"] = counters.get("write_failures", 0) + 1
    record["counters"] = counters


def write_post_file(path: str, success: bool) -> None:
    """Tekton's convention: PATH after success, PATH.err after failure."""
    atomic_write(path if success else path + ".err", b"", what="post file")
