"""Section `steps`: Tekton-style wait, post and cancel files; dependencies to wait for."""

from shim.config.option import DURATION, ENUM, LIST, PATH, Option

SECTION = "steps"

OPTIONS = (
    Option("wait_file", ["--wait-file"], "steps.wait_files", LIST, [],
           "start only when PATH exists; skip (exit 121) if PATH.err appears; repeatable",
           metavar="PATH"),
    Option("wait_for", ["--wait-for"], "steps.wait_for", LIST, [],
           "start only when every URL is ready: tcp://HOST:PORT, http(s)://... (2xx, or "
           "?status=CODES), file:///PATH, dns://NAME; awaited together; repeatable",
           metavar="URL"),
    Option("wait_timeout", ["--wait-timeout"], "steps.wait_timeout", DURATION, None,
           "give up waiting (wait files, --wait-for) after this long (exit 123); 0: no timeout",
           zero_is_none=True),
    Option("post_file", ["--post-file"], "steps.post_file", PATH, None,
           "write PATH after success, PATH.err after failure", metavar="PATH"),
    Option("cancel_file", ["--cancel-file"], "steps.cancel_file", PATH, None,
           "when PATH appears, terminate the delegate (exit 120)", metavar="PATH"),
    Option("on_error", ["--on-error"], "steps.on_error", ENUM, "stop",
           "continue: exit 0 after a failed delegate but record its code",
           choices=("stop", "continue")),
    Option("poll_interval", ["--poll-interval"], "steps.poll_interval", DURATION, 0.1,
           "how often to check cancel files and, without inotify, wait files"),
)
