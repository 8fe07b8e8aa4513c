"""`shim check [--config PATH] [--profile NAME] [--schema]`: validate configuration.

Prints every problem, one line each with where it is (a variable, or the file and
its JSON path), and exits 125 if there is any: every bad SHIM_* variable and every
error of the file, not just the first.  `--schema` prints the JSON Schema instead.
"""

import os

from shim.config import options
from shim.config.argv import parse_or_usage
from shim.config.option import BOOL, PATH, STR, Option
from shim.errors import EXIT_USAGE, ShimError
from shim.util.stdio import write_stderr, write_stdout

USAGE = "usage: shim check [--config PATH] [--profile NAME] [--schema]"

# The option table of `shim check` (the variables are the run options' own).
OPTIONS = (
    Option("config", ["--config"], None, PATH, None, "the config file to check (else SHIM_CONFIG)",
           metavar="PATH"),
    Option("profile", ["--profile"], None, STR, None, "the profile to check it with (else "
           "SHIM_PROFILE or the file's profile)", metavar="NAME"),
    Option("schema", ["--schema"], None, BOOL, False, "print the JSON Schema of the config file"),
)


def main(argv, environ=None):
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
    env_errors = []
    for name, raw in options.parse_environ(environ, env_errors).items():
        opt = options.BY_NAME[name]
        try:
            options.convert(opt, raw, opt.env)
        except ShimError as err:
            env_errors.append((opt.env, err))
    problems += [("environment", err) for _, err in env_errors]
    path = args.get("config") or environ.get("SHIM_CONFIG")
    label = path or "environment"
    if path:
        errors = []
        try:
            doc = options.load_config_file(path)
        except ShimError as err:  # unreadable or malformed: one error for the file
            errors.append(("$", err))
        else:
            profile = args.get("profile") or environ.get("SHIM_PROFILE") or None
            options.parse_config(doc, profile, errors)
        problems += [(path, err) for _, err in errors]
        if not errors:
            problems += [(path, err) for err in _secret_problems(path, args, environ)]
    for where, err in problems:
        obj = err.obj if err.operation == "parse" else f"{err.operation} {err.obj}"
        # Rendered by ShimError: one line even when a JSON key holds a control character.
        write_stderr("shim: " + ShimError(f"check {where}", obj, err.cause, err.fix).message() + "\n")
    if problems:
        return EXIT_USAGE
    write_stdout(f"{label}: ok\n")
    return 0


def _secret_problems(path, args, environ):
    """The secrets section's references and items, parsed as a run would (no fetching)."""
    argv = ["--config", path]
    if args.get("profile") or environ.get("SHIM_PROFILE"):
        argv += ["--profile", args.get("profile") or environ["SHIM_PROFILE"]]
    try:
        config = options.resolve(argv + ["--", "true"], {})
        from shim.run.pipeline import wants_secrets

        if wants_secrets(config, {}):
            from shim.run import secrets

            secrets.plan(config, {})
    except ShimError as err:
        return [err]
    return []
