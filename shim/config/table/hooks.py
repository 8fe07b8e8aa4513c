"""Section `hooks`: pre- and post-hook directories."""

from shim.config.option import DURATION, ENUM, PATH, Option

SECTION = "hooks"

OPTIONS = (
    Option("pre_hooks", ["--pre-hooks"], "hooks.pre", PATH, None,
           "run the executables in DIR, in name order, before the delegate", metavar="DIR"),
    Option("post_hooks", ["--post-hooks"], "hooks.post", PATH, None,
           "run the executables in DIR after the delegate (SHIM_EXIT_CODE, SHIM_REASON set)",
           metavar="DIR"),
    Option("hook_timeout", ["--hook-timeout"], "hooks.timeout", DURATION, 60.0,
           "terminate a hook that runs longer than this; 0: no timeout", zero_is_none=True),
    Option("hook_failure", ["--hook-failure"], "hooks.failure", ENUM, "abort",
           "what a failed hook does: abort the run (exit 122) or warn",
           choices=("abort", "warn")),
)
