"""`shim check [--config PATH] [--profile NAME] [--schema]`: validate configuration.

Prints every problem, one line each with where it is (a variable, or the file and
its JSON path), and exits 125 if there is any: every bad SHIM_* variable, every error
of the file, then everything a run would refuse before starting (references, sinks,
relay and heartbeat URLs, --exec conflicts: shim.run.validate), not just the first.
`--schema` prints the JSON Schema instead.
"""

import os

from shim.config import options
from shim.config.argv import parse_or_usage
from shim.config.option import BOOL, PATH, STR, Option
from shim.errors import EXIT_USAGE, ShimError
from shim.run import validate
from shim.util.stdio import write_stderr, write_stdout

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

USAGE = "usage: shim check [--config PATH] [--profile NAME] [--schema]"

# The option table of `shim check` (the variables are the run options' own).
OPTIONS = (
    Option("config", ["--config"], None, PATH, None, "the config file to check (else SHIM_CONFIG)",
           metavar="PATH"),
    Option("profile", ["--profile"], None, STR, None, "the profile to check it with (else "
           "SHIM_PROFILE or the file's profile)", metavar="NAME"),
    Option("schema", ["--schema"], None, BOOL, False, "print the JSON Schema of the config file"),
)


def main(argv: "list[str]", environ: "Mapping[str, str] | None" = None) -> int:
    environ = os.environ if environ is None else environ
    parsed = parse_or_usage(argv, OPTIONS, "check", USAGE)
    if parsed is None:
        return 0
    args, _ = parsed
    if args.get("schema"):
        from shim.config.schema import schema
        from shim.util import jsonio

        write_stdout(jsonio.dumps(schema(), indent=True) + b"\n")
        return 0
    problems = []  # (where, ShimError)
    env_errors: list = []
    for name, raw in options.parse_environ(environ, env_errors).items():
        opt = options.BY_NAME[name]
        try:
            options.convert(opt, raw, opt.env)
        except ShimError as err:
            env_errors.append((opt.env, err))
    problems += [("environment", err) for _, err in env_errors]
    path = args.get("config") or environ.get("SHIM_CONFIG")
    label = path or "environment"
    profile = args.get("profile") or environ.get("SHIM_PROFILE") or None
    file_ok = True
    if path:
        errors = []
        try:
            doc = options.load_config_file(path)
        except ShimError as err:  # unreadable or malformed: one error for the file
            errors.append(("$", err))
        else:
            options.parse_config(doc, profile, errors)
        problems += [(path, err) for _, err in errors]
        file_ok = not errors
    # Then what a run checks after parsing, over every setting that parsed: bad ones are
    # left out so that one mistake does not hide the others.
    bad = {env for env, _ in env_errors} | ({"SHIM_CONFIG"} if not file_ok else set())
    usable = {k: v for k, v in environ.items() if k not in bad}
    argv = ["--config", path] if path and file_ok else []
    argv += ["--profile", profile] if profile and file_ok else []
    try:
        config = options.resolve(argv + ["--"] + validate.PLACEHOLDER_COMMAND, usable)
    except ShimError as err:
        problems.append((label, err))
    else:
        problems += [(label, err) for err in validate.problems(config, usable)]
    for where, problem in problems:
        obj = problem.obj if problem.operation == "parse" else f"{problem.operation} {problem.obj}"
        # Rendered by ShimError: one line even when a JSON key holds a control character.
        write_stderr("shim: " + ShimError(f"check {where}", obj, problem.cause, problem.fix).message() + "\n")
    if problems:
        return EXIT_USAGE
    write_stdout(f"{label}: ok\n")
    from shim.run import identity  # the delegate's user, groups, capabilities, limits

    if identity.asked(config.identity):
        from shim.util import jsonio

        write_stdout("identity: " + jsonio.dumps(identity.show_effective(config)).decode() + "\n")
    return 0
