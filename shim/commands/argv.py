"""The small flag parser of subcommands: `--flag VALUE`, `--flag=VALUE`, `--switch`, one word."""

import sys

from shim.errors import usage_error


def parse(argv, command, usage, valued=(), switches=(), positional=None):
    """{name: value} (name = flag without `--`); `positional` names the one bare word allowed."""
    args, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-h", "--help"):
            sys.stdout.write(usage + "\n")
            raise SystemExit(0)
        if arg in switches:
            args[arg[2:]] = True
            continue
        if positional and not arg.startswith("-") and positional not in args:
            args[positional] = arg
            continue
        flag, eq, value = arg.partition("=")
        if flag not in valued:
            raise usage_error(f"{command} option {arg}", "unknown option", usage)
        if not eq:
            if i >= len(argv):
                raise usage_error(f"{command} option {flag}", "missing value", usage)
            value = argv[i]
            i += 1
        args[flag[2:]] = value
    return args
