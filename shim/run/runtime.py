"""Pipeline step: the platform the run is on, and its container contract.

Before the delegate: export SHIM_RUNTIME; off SageMaker with --sagemaker-layout,
write the SageMaker training layout; with --hyperparameters-env/-file/-dir, expose the
hyperparameters the way the Kubernetes job had them. After it: a failed run leaves
its reason in /opt/ml/output/failure (or .../message for processing jobs).
The SageMaker code is imported only when one of those is configured.
"""

import os

from shim.errors import REASON_SETUP, ShimError

# Runtimes whose job reads a failure/exit message file after the container ends.
MESSAGE_RUNTIMES = ("sagemaker-training", "sagemaker-processing")
REASONS = {
    "exited": "the delegate exited with code {code}",
    "signaled": "the delegate was killed by {signal} (exit code {code})",
    "timeout": "the delegate ran past --timeout and was terminated (exit code {code})",
    "cancelled": "the delegate was cancelled (exit code {code})",
}


def prepare(config, environ, log):
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
            env.update(sagemaker.synthesise(platform, environ, fetch, fetch_tree, log))
    if exposes:
        env.update(sagemaker.expose(platform, fetch, log))
    return env


def resident_reason(config):
    """Why the platform contract keeps shim resident (the failure file), or None."""
    if config.platform.sagemaker_layout:
        return "--sagemaker-layout (failure file)"
    if config.platform.runtime in MESSAGE_RUNTIMES:
        return f"{config.platform.runtime} (failure file)"
    return None


def finish(config, outcome, log):
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


def failure_reason(outcome):
    """One line a person reads in DescribeTrainingJob's FailureReason; never a value."""
    if outcome.error:
        return f"shim: {outcome.error}"
    template = REASONS.get(outcome.reason, "the run ended: {reason} (exit code {code})")
    return template.format(code=outcome.exit_code, signal=outcome.signal_name, reason=outcome.reason)


# -- the fetch port ------------------------------------------------------------------------
# SEAM (issue 10, sources): local files and trees are read here; every other reference goes
# to the sources layer (shim.sources: Vault, AWS, HTTP), which this branch does not have yet.
# The lead wires `_remote_fetch` to the sources' one-reference fetch and `_remote_tree` to an
# S3 ListObjectsV2 + GetObject walk when shim/sources/aws/s3.py is on main.

def fetch(ref):
    """The bytes one reference names."""
    local = _local_path(ref)
    if local is None:
        return _remote_fetch(ref)
    try:
        with open(local, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise _fetch_error(ref, err) from None


def fetch_tree(ref):
    """[(relative path, bytes)] of every file under a directory reference (a channel)."""
    local = _local_path(ref)
    if local is None:
        return _remote_tree(ref)
    if not os.path.isdir(local):
        raise ShimError("fetch", ref, "not a directory", "point the channel at a directory",
                        reason=REASON_SETUP)
    items = []
    try:
        for top, dirs, files in os.walk(local):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(top, name)
                with open(full, "rb") as handle:
                    items.append((os.path.relpath(full, local), handle.read()))
    except OSError as err:
        raise _fetch_error(ref, err) from None
    return items


def _local_path(ref):
    if ref.startswith("ref+file://"):
        return ref[len("ref+file://"):].split("#", 1)[0]
    return ref if ref.startswith("/") else None


def _remote_fetch(ref):
    raise ShimError("fetch", ref, "this build reads only ref+file:// and absolute paths here",
                    "use a file reference, or a shim with the secret sources (issue 10)",
                    reason=REASON_SETUP)


def _remote_tree(ref):
    return _remote_fetch(ref)


def _fetch_error(ref, err):
    return ShimError("fetch", ref, (err.strerror or str(err)).lower(), "check the path and its permissions",
                     reason=REASON_SETUP)
