"""`shim exec-env [OPTIONS] -- CMD`: run CMD with the environment the delegate gets.

For `kubectl exec` and debugging: the same configuration (flags, SHIM_* variables, config
file), the same sources and the same hygiene, then CMD replaces this process -- no
supervision, and no file or directory targets written (those belong to the running
delegate; a debug shell reads them where they are).
"""

import os

from shim.config import options
from shim.run import delegate, envlayer, hygiene

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping


def _say_files_not_written(config) -> None:
    """File and directory targets belong to the running delegate's shim: exec-env sets
    variables only, and says so instead of ignoring the options silently."""
    s = config.secrets
    paths = [f"file {p}" for p in s.files] + [f"directory {p}" for p in s.dirs]
    paths += [f"{k} {item[k]}" for item in (s.items or ()) if isinstance(item, dict)
              for k in ("file", "dir") if k in item]
    if paths:
        from shim.log import Log
        Log(config.log_level)("warn", f"exec-env: secret {paths[0]}" + (
            f" and {len(paths) - 1} more" if len(paths) > 1 else "") + " not written: "
            "exec-env sets variables only; read the files the running shim wrote")


def main(argv: "list[str]", environ: "Mapping[str, str] | None" = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config = options.resolve(argv, environ)
    except options.HelpRequested:
        import sys
        sys.stdout.write("usage: shim exec-env [OPTIONS] -- COMMAND [ARGS...]\n"
                         "runs COMMAND with the delegate's resolved environment (see shim --help)\n")
        return 0
    argv = delegate.command_from(config)
    env = envlayer.build(envlayer.inherited(environ), config)
    sources_env = dict(env)
    hygiene.scrub(env, config)
    from shim.run.pipeline import wants_secrets
    if wants_secrets(config, sources_env):
        from shim.run import secrets
        _say_files_not_written(config)
        secrets.run_step(config, env, files=False, sources_env=sources_env)
    path = delegate.find_executable(argv[0], env)
    from shim.proc.spawn import encode_command, exec_error
    bargv, benv = encode_command(argv, env)
    try:
        os.execve(path, bargv, env)
    except OSError as err:
        raise exec_error(err.errno, argv[0], benv) from None
