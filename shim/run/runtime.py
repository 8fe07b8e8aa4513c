"""Pipeline step: the platform the run is on, and its container contract.

Before the delegate: export SHIM_RUNTIME; off SageMaker with --sagemaker-layout,
write the SageMaker training layout; with --hyperparameters-env/-file/-dir, expose the
hyperparameters the way the Kubernetes job had them. After it: a failed run leaves
its reason in /opt/ml/output/failure (or .../message for processing jobs).
The SageMaker code is imported only when one of those is configured.
"""

import os

from shim.errors import REASON_SETUP, ShimError, usage_error

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Mapping

    from shim.config.options import Config
    from shim.run.pipeline import Outcome

# Runtimes whose job reads a failure/exit message file after the container ends.
MESSAGE_RUNTIMES = ("sagemaker-training", "sagemaker-processing")
REASONS = {
    "exited": "the delegate exited with code {code}",
    "signaled": "the delegate was killed by {signal} (exit code {code})",
    "timeout": "the delegate ran past --timeout and was terminated (exit code {code})",
    "cancelled": "the delegate was cancelled (exit code {code})",
}


def prepare(config: "Config", environ: "Mapping[str, str]", log: "Callable[[str, str], object]") -> "dict[str, str]":
    """Variables the platform step adds to the delegate's environment (and files it writes)."""
    detection = config.detection
    log("info", f"runtime {detection.runtime} ({detection.source}: {'; '.join(detection.evidence)})")
    env = {"SHIM_RUNTIME": detection.runtime}
    platform = config.platform
    exposes = platform.hyperparameters_env is not None or platform.hyperparameters_file or \
        platform.hyperparameters_dir
    if not (platform.sagemaker_layout or exposes):
        return env
    from shim.platform import sagemaker

    if platform.sagemaker_layout:
        if detection.sagemaker:
            log("info", f"on {detection.runtime}: SageMaker wrote the layout; --sagemaker-layout does nothing")
        else:
            env.update(sagemaker.synthesise(platform, environ, lambda ref: fetch(ref, environ),
                                           lambda ref: fetch_tree(ref, environ), log))
    if exposes:
        env.update(sagemaker.expose(platform, lambda ref: fetch(ref, environ), log))
    return env


def resident_reason(config: "Config") -> "str | None":
    """Why the platform contract keeps shim resident (the failure file), or None."""
    if config.platform.sagemaker_layout:
        return "--sagemaker-layout (failure file)"
    if config.platform.runtime in MESSAGE_RUNTIMES:
        return f"{config.platform.runtime} (failure file)"
    return None


def finish(config: "Config", outcome: "Outcome", log: "Callable[[str, str], object]") -> None:
    """After a failed run on (or laid out as) SageMaker: the reason where the job reads it."""
    if outcome is None or outcome.exit_code == 0 or resident_reason(config) is None:
        return
    from shim.platform import sagemaker

    runtime = config.platform.runtime if config.platform.runtime in MESSAGE_RUNTIMES else "sagemaker-training"
    try:
        sagemaker.write_failure(config.platform.sagemaker_root, runtime, failure_reason(outcome), log)
    except ShimError as err:
        if not outcome.error:
            raise
        # The run already failed with its own error (often the same unwritable root): say it once.
        log("info", err.message())


def failure_reason(outcome: "Outcome") -> str:
    """One line a person reads in DescribeTrainingJob's FailureReason; never a value."""
    if outcome.error:
        return f"shim: {outcome.error}"
    template = REASONS.get(outcome.reason, "the run ended: {reason} (exit code {code})")
    return template.format(code=outcome.exit_code, signal=outcome.signal_name, reason=outcome.reason)


# -- the fetch port ------------------------------------------------------------------------
# Local files and trees are read here; other references go to the sources layer
# (shim.sources.fetch: Vault, AWS, HTTP, with its retries, deadline and fail-closed errors),
# S3 prefixes to shim.platform.s3tree. Without the sources layer in the build, a remote
# reference is one clear error.

def fetch(ref: str, environ: "Mapping[str, str] | None" = None) -> "Any":
    """The bytes one reference names."""
    local = _local_path(ref)
    if local is None:
        return _remote_fetch(ref, os.environ if environ is None else environ)
    try:
        with open(local, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise _fetch_error(ref, err) from None


def fetch_tree(ref: str, environ: "Mapping[str, str] | None" = None) -> "Iterator[tuple[str, bytes]]":
    """[(relative path, bytes)] of every file under a directory reference (a channel)."""
    local = _local_path(ref)
    if local is None:
        if not ref.startswith("ref+s3://"):
            raise usage_error(f"channel {ref}", "a channel is a directory",
                              "use ref+s3://BUCKET/PREFIX/ or ref+file:///DIR")
        from shim.platform import s3tree

        return s3tree.tree(ref, os.environ if environ is None else environ)
    if not os.path.isdir(local):
        raise ShimError("fetch", ref, "not a directory", "point the channel at a directory",
                        reason=REASON_SETUP)
    return _local_tree(ref, local)


def _local_tree(ref, local):
    """(relative path, bytes) of each file, one at a time (a channel is never all in memory)."""
    try:
        for top, dirs, files in os.walk(local, onerror=_raise):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(top, name)
                with open(full, "rb") as handle:
                    data = handle.read()
                yield os.path.relpath(full, local), data
    except OSError as err:
        raise _fetch_error(ref, err) from None


def _raise(err):
    raise err


def _local_path(ref):
    if ref.startswith("ref+file://"):
        return ref[len("ref+file://"):].split("#", 1)[0]
    return ref if ref.startswith("/") else None


def _remote_fetch(ref_text, environ):
    try:
        from shim.sources import fetch as sources
        from shim.sources.refs import RefError, parse
    except ImportError:
        raise ShimError("fetch", ref_text, "this build reads only ref+file:// and absolute paths here",
                        "use a file reference, or a shim build that has the secret sources",
                        reason=REASON_SETUP) from None
    try:
        ref = parse(ref_text)
    except RefError as err:
        raise usage_error(f"reference {ref_text}", str(err),
                          "write ref+SCHEME://PATH[?PARAMS][#/json/pointer]") from None
    [result] = sources.fetch_all([sources.Item(ref, "hyperparameters")], env=environ)
    value = result.value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    from shim.util import jsonio

    return jsonio.dumps(value)  # a pointer selected a JSON object (or an SSM path's map)


def _fetch_error(ref, err):
    return ShimError("fetch", ref, (err.strerror or str(err)).lower(), "check the path and its permissions",
                     reason=REASON_SETUP)
