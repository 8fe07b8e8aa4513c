"""Section `logs`: capture of the delegate's stdout/stderr, tee files, sinks, masking."""

from shim.config.option import BOOL, DURATION, ENUM, LIST, MAP, PATH, SIZE, Option

SECTION = "logs"

OPTIONS = (
    Option("stdout_path", ["--stdout-path"], "logs.stdout_path", PATH, None,
           "also append the delegate's stdout to PATH (Tekton's --stdout-path)", metavar="PATH"),
    Option("stderr_path", ["--stderr-path"], "logs.stderr_path", PATH, None,
           "also append the delegate's stderr to PATH (Tekton's --stderr-path)", metavar="PATH"),
    Option("log_sink", ["--log-sink"], "logs.sinks", LIST, [],
           "stream output as JSON lines to file:///path[?max_bytes=&backups=], tcp://, unix://, "
           "udp://, http(s)://...[?token_file=&gzip=]; repeatable", metavar="URL"),
    Option("log_label", ["--log-label"], "logs.labels", MAP, {},
           "add KEY=VALUE to every log record; repeatable", metavar="KEY=VALUE"),
    Option("max_line", ["--max-line"], "logs.max_line", SIZE, 16384,
           "split longer lines into records marked partial (at least 4: one UTF-8 character)",
           minimum=4),
    Option("log_overflow", ["--log-overflow"], "logs.overflow", ENUM, "block",
           "a full sink buffer: block holds the delegate's output while the sink is healthy "
           "(a down sink, or one held past --log-block-limit, drops, counted); drop never holds",
           choices=("block", "drop")),
    Option("log_block_limit", ["--log-block-limit"], "logs.block_limit", DURATION, 5.0,
           "longest one full sink holds the delegate's output before it drops instead "
           "(at least 10ms)", minimum=0.01),
    Option("log_buffer", ["--log-buffer"], "logs.buffer", SIZE, 1 << 20,
           "bytes of records held per sink while it is slow or down (at least 1k)",
           minimum=1024),
    Option("flush_timeout", ["--flush-timeout"], "logs.flush_timeout", DURATION, 5.0,
           "after the delegate ends, how long to drain output and flush every sink"),
    Option("mask_env", ["--mask-env"], "logs.mask_env", LIST, [],
           "replace the value of variable NAME by *** in output and sinks; repeatable",
           metavar="NAME"),
    Option("mask_secrets", ["--mask-secrets"], "logs.mask_secrets", BOOL, True,
           "mask fetched secret values in output and sinks; shim stays resident to do it "
           "(--no-mask-secrets, or --exec, lets it exec the delegate instead)"),
    Option("mask_delay", ["--mask-delay"], "logs.mask_delay", DURATION, 0.05,
           "longest a possible split secret is held back before output continues"),
)
