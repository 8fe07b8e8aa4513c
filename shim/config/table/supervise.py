"""Section `supervise`: exec or supervise, signals, grace, timeout, exit codes."""

from shim.config.option import BOOL, DURATION, ENUM, EXIT_MAP, SIGNAL_MAP, Option

SECTION = "supervise"

OPTIONS = (
    Option("mode", ["--mode"], "supervise.mode", ENUM, "auto",
           "exec the delegate (no resident shim) or supervise it; auto picks",
           choices=("auto", "exec", "supervise"),
           flag_value={"--exec": "exec", "--supervise": "supervise"}),
    Option("signal_group", ["--signal-group"], "supervise.signal_group", BOOL, False,
           "run the delegate in its own process group and signal the whole group"),
    Option("rewrite", ["--rewrite"], "supervise.rewrite", SIGNAL_MAP, {},
           "forward signal FROM as TO (e.g. TERM:QUIT); TO 0 ignores FROM; repeatable", sep=":",
           metavar="FROM:TO"),
    Option("grace", ["--grace"], "supervise.grace", DURATION, 10.0,
           "after TERM (timeout, cancel, leftover descendants), wait this long before KILL"),
    Option("timeout", ["--timeout"], "supervise.timeout", DURATION, None,
           "terminate the delegate after this long (exit 124, reason timeout); 0: no timeout", zero_is_none=True),
    Option("stop_delay", ["--stop-delay"], "supervise.stop_delay", DURATION, None,
           "on a stop signal (TERM, INT, QUIT), keep the delegate running this long before "
           "forwarding it (load balancer deregistration); a second one forwards at once"),
    Option("exit_remap", ["--exit-remap"], "supervise.exit_remap", EXIT_MAP, {},
           "map the delegate's exit code FROM to TO (e.g. 143:0); repeatable", sep=":",
           metavar="FROM:TO"),
    Option("subreaper", ["--subreaper"], "supervise.subreaper", BOOL, True,
           "when not PID 1, become a child subreaper so orphans are reaped (--no-subreaper)"),
)
