"""The argv parser of the small subcommands (`check`, `install`), driven by an option table.

The same `Option` class as the run options, so flags, `--no-` forms, `--flag=value`,
converters and messages behave alike everywhere.  A subcommand's table is a short
tuple next to its code; the run options keep their own layered resolver
(shim.config.options) because they also come from files and profiles.
"""

from shim.config.kinds import convert
from shim.config.option import BOOL, HelpRequested
from shim.errors import usage_error

__all__ = ["HelpRequested", "from_environ", "parse_flags", "parse_or_usage"]


def parse_flags(argv, table, command, usage, positionals=0):
    """({option name: typed value}, [positional words]) from argv.

    Flags may come before or after positional words; `--` ends the flags.  Values
    are converted by the option's kind, so a bad one is a one-line usage error that
    names the flag.
    """
    by_flag = {}
    for opt in table:
        for flag in opt.flags:
            by_flag[flag] = opt
        if opt.kind == BOOL:
            by_flag["--no-" + opt.flags[0][2:]] = opt
    values, words, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            words.extend(argv[i:])
            break
        if arg in ("-h", "--help"):
            raise HelpRequested()
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        flag, eq, inline = arg.partition("=")
        opt = by_flag.get(flag)
        if opt is None:
            raise usage_error(f"{command} option {flag}", "unknown option", usage)
        if opt.kind == BOOL:
            values[opt.name] = convert(opt, inline, flag) if eq else not flag.startswith("--no-")
            continue
        if not eq:
            if i >= len(argv):
                raise usage_error(f"{command} option {flag}", "needs a value", usage)
            inline = argv[i]
            i += 1
        values[opt.name] = convert(opt, inline, flag)
    if positionals is not None and len(words) > positionals:
        raise usage_error(command, f"too many arguments ({len(words)})", usage)
    return values, words


def parse_or_usage(argv, table, command, usage, positionals=0):
    """parse_flags, or None once -h/--help has printed `usage` (the caller exits 0)."""
    try:
        return parse_flags(argv, table, command, usage, positionals)
    except HelpRequested:
        from shim.util.stdio import write_stdout

        write_stdout(usage + "\n")
        return None


def from_environ(table, environ):
    """{option name: typed value} from each option's variable (empty means unset)."""
    values = {}
    for opt in table:
        raw = environ.get(opt.env, "")
        if raw != "":
            values[opt.name] = convert(opt, raw, opt.env)
    return values
