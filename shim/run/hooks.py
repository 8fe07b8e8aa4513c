"""Pre- and post-hooks: the executables of a directory, run in name order.

Each hook gets the delegate's resolved environment (post-hooks also get
SHIM_EXIT_CODE and SHIM_REASON), a timeout, and stdout redirected to stderr so
the delegate's stdout stays its own.  A failing hook aborts the run (exit 122)
or, with `--hook-failure warn`, is reported and ignored.

Hooks get the fetched secrets in their environment, so their output is masked as the
delegate's is: with a masker, a hook's stdout and stderr go through one pipe that a
thread reads, masks and writes to shim's stderr (`MaskedOutput`).
"""

import os
import stat
import threading

from shim.errors import REASON_HOOK_FAILED, REASON_INTERRUPTED, REASON_SETUP, ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Mapping

    from shim.config.options import Config
    from shim.proc.reaper import Exit
    from shim.util.mask import Masker


def list_hooks(directory: str, say: "Callable[[str, str], object] | None" = None) -> "list[str]":
    """Executable regular files of `directory`, sorted by name; dotfiles are skipped,
    and a regular file that is not executable is skipped with a warning."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as err:
        raise ShimError("read hooks", directory, (err.strerror or str(err)).lower(),
                        "create the directory or drop --pre-hooks/--post-hooks",
                        reason=REASON_SETUP) from None
    hooks = []
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith("."):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(path, os.X_OK):
            hooks.append(path)
        elif say is not None:
            say("warn", f"run hook {path}: not executable, skipped; chmod +x it to run it, "
                        "or rename it to start with '.'")
    return hooks


def output_masker(config: "Config", env: "Mapping[str, str]", secret_values: "list[str] | None") -> "Masker | None":
    """The masker for hooks' output: the registry when fetched secrets are masked, plus
    the --mask-env values; None when nothing is masked."""
    names = config.logs.mask_env
    if not names and not (secret_values and config.logs.mask_secrets):
        return None
    from shim.util.mask import REGISTRY, Masker
    masker = REGISTRY if secret_values and config.logs.mask_secrets else Masker()
    for name in names:
        if name in env:
            masker.add(env[name], f"variable {name}")
    masker.build()
    return masker if masker else None


class MaskedOutput:
    """A pipe for one hook's stdout and stderr; a thread masks what comes through and
    writes it to `fd` (shim's stderr).  `finish()` after the hook: closes shim's write
    end and waits (at most `timeout`) for the rest, which a descendant may still hold."""

    def __init__(self, masker, fd=2):
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self.masker, self.fd = masker, fd
        self.thread = threading.Thread(target=self._pump, name="shim-hook-output", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        from shim.util.fsutil import write_all
        stream = self.masker.stream()
        try:
            while True:
                data = os.read(self.read_fd, 65536)
                if not data:
                    break
                write_all(self.fd, stream.feed(data))
            write_all(self.fd, stream.flush())
        except OSError:
            pass  # shim's stderr is gone: nothing to write to
        finally:
            os.close(self.read_fd)

    def finish(self, timeout: float = 2.0) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        self.thread.join(timeout)


def run_hooks(directory: str, env: "dict[str, str]", phase: str, run_child: "Callable[..., Exit]", failure: str,
              say: "Callable[[str, str], object]", masker: "Masker | None" = None) -> "list[tuple[str, Exit]]":
    """Run every hook in name order; returns [(path, Exit)].  `run_child(path, argv, env,
    output)` spawns, supervises and drains one hook (the pipeline's Run.run_child);
    `output` is the fd for its stdout and stderr (a masking pipe when `masker` is given)."""
    results = []
    for path in list_hooks(directory, say):
        output = MaskedOutput(masker) if masker is not None else None
        try:
            if output is None:
                result = run_child(path, [path], env)
            else:
                try:
                    result = run_child(path, [path], env, output.write_fd)
                finally:
                    output.finish()
        except ShimError as err:
            if err.reason == REASON_INTERRUPTED:
                raise  # a stop signal ended the run, not the hook
            if failure == "warn":
                say("warn", err.message())
                continue
            raise ShimError("run", f"{phase} hook {path}", err.cause,
                            "fix the hook, or use --hook-failure warn",
                            reason=REASON_HOOK_FAILED) from None
        results.append((path, result))
        if result.code != 0:
            cause = f"exited with {result.code} ({result.reason})"
            if failure == "warn":
                say("warn", f"run {phase} hook {path}: {cause}; continuing (--hook-failure warn)")
                continue
            raise ShimError("run", f"{phase} hook {path}", cause,
                            "fix the hook, or use --hook-failure warn", reason=REASON_HOOK_FAILED)
    return results
