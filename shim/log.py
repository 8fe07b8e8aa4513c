"""shim's own messages: one line each on stderr, `shim:` prefix, never on stdout."""

from shim.errors import redact
from shim.util.stdio import write_stderr

LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}


class Log:
    """Callable `log(level, message)` that drops messages above the configured level."""

    def __init__(self, level="warn", stream=None):
        self.threshold = LEVELS.get(level, 1)
        self.stream = stream

    def __call__(self, level, message) -> None:
        if LEVELS[level] > self.threshold:
            return
        message = redact(message)  # no secret in any message (shim.util.mask.REGISTRY)
        if self.stream is None:  # fd 2 itself: works when sys.stderr is None (2>&-)
            write_stderr(f"shim: {message}\n")
            return
        try:
            self.stream.write(f"shim: {message}\n")
            self.stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
