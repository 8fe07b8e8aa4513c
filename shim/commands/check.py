"""`shim check [--config PATH] [--profile NAME] [--schema]`: validate configuration.

Prints every problem, one line each with its JSON path, and exits 125 if there
is any; `--schema` prints the JSON Schema of the config file instead.
"""

import os
import sys

from shim.config import options
from shim.errors import EXIT_USAGE, ShimError

USAGE = "usage: shim check [--config PATH] [--profile NAME] [--schema]"


def main(argv, environ=None):
    environ = os.environ if environ is None else environ
    args = _parse(argv)
    if args.get("schema"):
        from shim.util import jsonio
        from shim.config.schema import schema

        sys.stdout.buffer.write(jsonio.dumps(schema(), indent=True) + b"\n")
        return 0
    problems = []  # (object, ShimError)
    for name, raw in _environ_values(environ, problems).items():
        try:
            options.convert(options.BY_NAME[name], raw, options.BY_NAME[name].env)
        except ShimError as err:
            problems.append(("environment", err))
    path = args.get("config") or environ.get("SHIM_CONFIG")
    label = path or "environment"
    if path:
        doc = options.load_config_file(path)  # unreadable / malformed: one error, exit 125
        errors = []
        options.parse_config(doc, args.get("profile") or environ.get("SHIM_PROFILE") or None, errors)
        problems += [(path, err) for _, err in errors]
        if not errors:
            problems += [(path, err) for err in _secret_problems(path, args, environ)]
    for where, err in problems:
        _say(f"check {where} {err.obj}: {err.cause}" + (f"; {err.fix}" if err.fix else ""))
    if problems:
        return EXIT_USAGE
    sys.stdout.write(f"{label}: ok\n")
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


def _environ_values(environ, problems):
    try:
        return options.parse_environ(environ)
    except ShimError as err:
        problems.append(("environment", err))
        return {}


def _parse(argv):
    from shim.commands.argv import parse

    return parse(argv, "check", USAGE, valued=("--config", "--profile"), switches=("--schema",))


def _say(line):
    sys.stderr.write(f"shim: {line}\n")
