"""shim's own messages: one line each on stderr, `shim:` prefix, never on stdout."""

import sys

LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}


class Log:
    """Callable `log(level, message)` that drops messages above the configured level."""

    def __init__(self, level="warn", stream=None):
        self.threshold = LEVELS.get(level, 1)
        self.stream = stream

    def __call__(self, level, message):
        if LEVELS[level] > self.threshold:
            return
        stream = self.stream or sys.stderr
        try:
            stream.write(f"shim: {message}\n")
            stream.flush()
        except (OSError, ValueError):
            pass
