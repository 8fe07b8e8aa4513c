"""The argv parser of the small subcommands (`check`, `install`), driven by an option table.

The same `Option` class as the run options, so flags, `--no-` forms, `--flag=value`,
converters and messages behave alike everywhere.  A subcommand's table is a short
tuple next to its code; the run options keep their own layered resolver
(shim.config.options) because they also come from files and profiles.
"""

from shim.config.kinds import convert
from shim.config.option import BOOL, HelpRequested
from shim.errors import usage_error

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

    from shim.config.option import Option

__all__ = ["HelpRequested", "from_environ", "parse_flags", "parse_or_usage"]


def parse_flags(argv: "list[str]", table: "tuple[Option, ...]", command: str, usage: str,
                positionals: "int | None" = 0) -> "tuple[dict[str, Any], list[str]]":
    """({option name: typed value}, [positional words]) from argv.

    Flags may come before or after positional words; `--` ends the flags.  Values
    are converted by the option's kind, so a bad one is a one-line usage error that
    names the flag.
    """
    by_flag = {}
    for option in table:
        for flag in option.flags:
            by_flag[flag] = option
        if option.kind == BOOL:
            by_flag["--no-" + option.flags[0][2:]] = option
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


def parse_or_usage(argv: "list[str]", table: "tuple[Option, ...]", command: str, usage: str,
                   positionals: "int | None" = 0) -> "tuple[dict[str, Any], list[str]] | None":
    """parse_flags, or None once -h/--help has printed `usage` (the caller exits 0)."""
    try:
        return parse_flags(argv, table, command, usage, positionals)
    except HelpRequested:
        from shim.util.stdio import write_stdout

        write_stdout(usage + "\n")
        return None


def from_environ(table: "tuple[Option, ...]", environ: "Mapping[str, str]") -> "dict[str, Any]":
    """{option name: typed value} from each option's variable (empty means unset)."""
    values = {}
    for opt in table:
        raw = environ.get(opt.env, "")
        if raw != "":
            values[opt.name] = convert(opt, raw, opt.env)
    return values
