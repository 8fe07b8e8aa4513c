"""The exit-code contract and the one error type shim raises.

Every failure below the CLI edge raises `ShimError`; `shim.cli.main` is the only
place that turns it into a message on stderr and an exit code.  Codes of the
delegate pass through unchanged (0-255, 128+n for signal n); shim's own outcomes
use the codes below, and every outcome also carries a `reason` string because
codes can collide with what a delegate returns.
"""

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable

# -- exit codes (documented in README, "Exit codes") -------------------------
EXIT_INTERNAL = 119  # a bug in shim: please report it
EXIT_CANCELLED = 120  # the cancel file appeared; the delegate was terminated
EXIT_SKIPPED = 121  # an upstream step failed (PATH.err): this step was skipped
EXIT_HOOK_FAILED = 122  # a hook failed and --hook-failure is abort
EXIT_WAIT_TIMEOUT = 123  # --wait-timeout expired before every wait file existed
EXIT_TIMEOUT = 124  # --timeout expired; the delegate was terminated
EXIT_USAGE = 125  # bad command line, configuration or input: nothing was run
EXIT_NOT_EXECUTABLE = 126  # the command exists but cannot be executed
EXIT_NOT_FOUND = 127  # the command was not found
EXIT_SETUP = 118  # a runtime operation failed (I/O, permissions) before the delegate ran
EXIT_FETCH = 117  # a secret/config reference could not be resolved: the delegate was not started
EXIT_HEARTBEAT_LOST = 116  # the heartbeat endpoint stopped answering; the delegate was terminated
EXIT_RELAY = 115  # a stdio relay peer never connected or failed; the delegate was not started or ended

# -- reasons (the `reason` field of the result record) -----------------------
REASON_EXITED = "exited"
REASON_SIGNALED = "signaled"
REASON_TIMEOUT = "timeout"
REASON_CANCELLED = "cancelled"
REASON_SKIPPED = "skipped"
REASON_WAIT_TIMEOUT = "wait-timeout"
REASON_HOOK_FAILED = "hook-failed"
REASON_INTERRUPTED = "interrupted"
REASON_USAGE = "usage"
REASON_NOT_FOUND = "not-found"
REASON_NOT_EXECUTABLE = "not-executable"
REASON_SETUP = "setup-error"
REASON_INTERNAL = "internal-error"
REASON_FETCH_FAILED = "fetch-failed"
REASON_HEARTBEAT_LOST = "heartbeat-lost"
REASON_RELAY_FAILED = "relay-failed"

# One table: reason -> default exit code for shim's own outcomes.
REASON_CODES = {
    REASON_TIMEOUT: EXIT_TIMEOUT,
    REASON_CANCELLED: EXIT_CANCELLED,
    REASON_SKIPPED: EXIT_SKIPPED,
    REASON_WAIT_TIMEOUT: EXIT_WAIT_TIMEOUT,
    REASON_HOOK_FAILED: EXIT_HOOK_FAILED,
    REASON_USAGE: EXIT_USAGE,
    REASON_NOT_FOUND: EXIT_NOT_FOUND,
    REASON_NOT_EXECUTABLE: EXIT_NOT_EXECUTABLE,
    REASON_SETUP: EXIT_SETUP,
    REASON_INTERNAL: EXIT_INTERNAL,
    REASON_FETCH_FAILED: EXIT_FETCH,
    REASON_HEARTBEAT_LOST: EXIT_HEARTBEAT_LOST,
    REASON_RELAY_FAILED: EXIT_RELAY,
}


# The registry of sensitive values (shim.util.mask.REGISTRY) installs itself here when it
# is first imported; every message and record text passes through `redact` where it is
# written (ShimError.message, shim.log.Log), so no error text can carry a secret.
_redactor = None


def set_redactor(fn: "Callable[[str], str] | None") -> None:
    global _redactor
    _redactor = fn


def redact(text: str) -> str:
    """`text` with every registered sensitive value replaced by ***."""
    return _redactor(text) if _redactor is not None and text else text


class ShimError(Exception):
    """A failure with everything the user needs: operation, object, cause, fix.

    Rendered as one line: ``shim: <operation> <object>: <cause>; <fix>``.
    Never include a secret value in any field.
    """

    show_usage: "bool"  # set on an error after which shim.cli prints the usage line too

    def __init__(self, operation, obj, cause, fix="", reason=REASON_USAGE, code=None):
        self.operation = operation
        self.obj = obj
        self.cause = cause
        self.fix = fix
        self.reason = reason
        self.code = REASON_CODES.get(reason, EXIT_USAGE) if code is None else code
        super().__init__(self.message())

    def message(self) -> str:
        head = f"{self.operation} {self.obj}".strip() if self.obj != "" else self.operation
        text = f"{head}: {self.cause}"
        if self.fix:
            text += f"; {self.fix}"
        text = redact(text)
        # One line, whatever the cause contained: a newline becomes a space, any other
        # control or separator character (\r, NUL, U+2028, a JSON key's ESC) an escape.
        if text.isprintable():
            return text
        return "".join(ch if ch.isprintable() else " " if ch == "\n" else
                       f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
                       for ch in text)


def usage_error(obj: str, cause: str, fix: str) -> "ShimError":
    """A command-line or configuration mistake (exit 125)."""
    return ShimError("parse", obj, cause, fix, reason=REASON_USAGE)
