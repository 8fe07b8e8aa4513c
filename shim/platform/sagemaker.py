"""The SageMaker training-container contract, both ways.

On SageMaker (`expose`): the job's hyperparameters arrive as
/opt/ml/input/config/hyperparameters.json, a flat object of *string* values
(CreateTrainingJob's HyperParameters is map<string,string>: at most 100 keys,
values up to 2500 characters). Code written for Kubernetes read them as
environment variables or a mounted config file; shim puts them there:
`--hyperparameters-env PREFIX` (PREFIX + the key upper-cased, non-alphanumerics
as `_`), `--hyperparameters-file PATH` (JSON, or dotenv for `*.env`) and
`--hyperparameters-dir DIR` (a ConfigMap volume: one file per key). Bulk
payloads beyond the API caps come from a reference (`--hyperparameters-from
ref+s3://…`, the seed's "upload to S3 before the job"), under the job's own keys.

Elsewhere (`synthesise`, for a SageMaker-style image on Kubernetes or Docker):
write the files SageMaker would have written — hyperparameters.json (string
values), resourceconfig.json (current_host, hosts, network_interface_name),
inputdataconfig.json, /opt/ml/input/data/<channel> from a reference to a
prefix — and the output directories. After the run, `write_failure` puts the
first 1024 bytes of the failure reason in /opt/ml/output/failure (what
DescribeTrainingJob shows as FailureReason), unless the algorithm wrote one.

Every path is below `root` (`--sagemaker-root`, default /) so tests need not
write /opt/ml. Fetching is a port (`fetch(ref) -> bytes`, `fetch_tree(ref) ->
[(relative path, bytes)]`) provided by the sources layer.
"""

import os
import re
import shutil

from shim.errors import REASON_SETUP, ShimError, usage_error
from shim.sources.targets import write_dir, write_file
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Mapping

CONFIG_DIR = "opt/ml/input/config"
HYPERPARAMETERS = f"{CONFIG_DIR}/hyperparameters.json"
RESOURCE_CONFIG = f"{CONFIG_DIR}/resourceconfig.json"
INPUT_DATA_CONFIG = f"{CONFIG_DIR}/inputdataconfig.json"
DATA_DIR = "opt/ml/input/data"
OUTPUT_DIRS = ("opt/ml/model", "opt/ml/output/data", "opt/ml/checkpoints")
# Where each SageMaker job type reads the container's exit message (first 1 KB).
FAILURE_FILES = {
    "sagemaker-training": "opt/ml/output/failure",  # FailureReason
    "sagemaker-processing": "opt/ml/output/message",  # ExitMessage
}
FAILURE_LIMIT = 1024

# CreateTrainingJob caps (botocore sagemaker service-2.json; the HyperParameters doc text says
# 256 per value, the shape says 2500): messages cite them so users know why a bulk ref exists.
HP_MAX_KEYS = 100
HP_MAX_KEY = 256
HP_MAX_VALUE = 2500
ENV_MAX_ENTRIES = 100
ENV_MAX_VALUE = 512
DEFAULT_HOST = "algo-1"
DEFAULT_INTERFACE = "eth0"  # what the SDK's local mode writes
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]{1,64}$")  # the API's ChannelName pattern


class Settings:
    """The `platform` section's shape, for callers without a resolved Config (tests, tools).

    The run passes `config.platform` itself: same attribute names, same defaults.
    """

    def __init__(self, sagemaker_root="/", sagemaker_layout=False, hyperparameters=None,
                 hyperparameters_from=None, hyperparameters_env=None, hyperparameters_file=None,
                 hyperparameters_dir=None,
                 channels=None, hosts=(), current_host=None, network_interface=DEFAULT_INTERFACE,
                 job_name=None):
        self.sagemaker_root, self.sagemaker_layout = sagemaker_root, sagemaker_layout
        self.hyperparameters = dict(hyperparameters or {})
        self.hyperparameters_from = hyperparameters_from
        self.hyperparameters_env, self.hyperparameters_file = hyperparameters_env, hyperparameters_file
        self.hyperparameters_dir = hyperparameters_dir
        self.channels = dict(channels or {})
        self.hosts, self.current_host = hosts, current_host
        self.network_interface, self.job_name = network_interface, job_name


def path(root: "str | None", relative: str) -> str:
    return os.path.join(root or "/", relative)


# -- hyperparameters: SageMaker's string map <-> what code read before ---------------------

def as_string(value: object) -> str:
    """A hyperparameter value as SageMaker stores it: strings stay, the rest is JSON text."""
    if isinstance(value, str):
        return value
    from shim.util import jsonio

    return jsonio.dumps(value).decode("utf-8")


def decoded(value: str) -> "Any":
    """The value code saw before: the toolkit's rule (json.loads, else the raw string)."""
    from shim.util import jsonio

    try:
        return jsonio.loads(value)
    except ValueError:
        return value


def env_text(value: str) -> str:
    """An env var's text for a hyperparameter: SDK-JSON-quoted strings lose their quotes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = decoded(value)
        if isinstance(inner, str):
            return inner
    return value


def load_object(data: "str | bytes", what: str, fix: str) -> "dict[str, str]":
    """Parse a JSON object of hyperparameters; values become SageMaker strings."""
    from shim.util import jsonio

    try:
        doc = jsonio.loads(data)
    except ValueError as err:
        raise usage_error(what, f"not JSON ({str(err).splitlines()[0][:120]})", fix) from None
    if not isinstance(doc, dict):
        raise usage_error(what, f"expected a JSON object, got {type(doc).__name__}", fix)
    return {str(k): as_string(v) for k, v in doc.items()}


def read_hyperparameters(root: str) -> "dict[str, str]":
    """The job's hyperparameters.json as {name: string}; {} when the file is absent."""
    where = path(root, HYPERPARAMETERS)
    try:
        with open(where, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ShimError("read", f"hyperparameters {where}", (err.strerror or str(err)).lower(),
                        "check the file's permissions", reason=REASON_SETUP) from None
    return load_object(data, f"hyperparameters {where}",
                       "SageMaker writes a flat JSON object of strings there")


def gather(settings: "Any", fetch: "Callable[[str], Any]") -> "dict[str, str]":
    """Hyperparameters from (lowest first) the bulk reference, the config, the job's file."""
    merged = {}
    if settings.hyperparameters_from:
        merged.update(load_object(fetch(settings.hyperparameters_from),
                                  f"hyperparameters {settings.hyperparameters_from}",
                                  "the reference must hold a JSON object"))
    merged.update({k: as_string(v) for k, v in settings.hyperparameters.items()})
    return merged


def env_name(prefix: str, key: str) -> str:
    """PREFIX + key upper-cased, every non-alphanumeric as `_` (chamber's normalisation)."""
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def hyperparameter_env(prefix: str, hyperparameters: "dict[str, str]") -> "dict[str, str]":
    """{ENV_NAME: text}; two keys that normalise to one name are an error naming both."""
    origin: dict
    out, origin = {}, {}
    for key in sorted(hyperparameters):
        name = env_name(prefix, key)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise usage_error(f"hyperparameter {show(key)}", f"{show(name)} is not a valid variable name",
                              "give --hyperparameters-env a prefix that starts with a letter or _")
        if name in origin:
            raise usage_error(f"hyperparameters {show(origin[name])} and {show(key)}",
                              f"both become {name}", "rename one of them")
        out[name], origin[name] = env_text(hyperparameters[key]), key
    return out


# Linux refuses to exec with one "NAME=value" string over MAX_ARG_STRLEN (32 pages) or all
# of argv + env over ARG_MAX (E2BIG): say so before the delegate cannot start.
MAX_ARG_STRLEN = 32 * 4096


def check_exec_limits(env: "dict[str, str]") -> None:
    """Refuse hyperparameter variables the kernel would refuse at exec, naming them."""
    sizes = {name: len(name.encode()) + len(value.encode("utf-8", "surrogateescape")) + 2
             for name, value in env.items()}
    big = sorted(name for name, size in sizes.items() if size > MAX_ARG_STRLEN)
    if big:
        raise usage_error(f"hyperparameters as variables {', '.join(big[:5])}",
                          f"longer than Linux's {MAX_ARG_STRLEN}-byte limit for one variable",
                          "expose them with --hyperparameters-file or --hyperparameters-dir instead")
    total, limit = sum(sizes.values()), os.sysconf("SC_ARG_MAX")
    if total > limit:
        raise usage_error("hyperparameters as variables", f"{total} bytes, over ARG_MAX ({limit})",
                          "expose them with --hyperparameters-file or --hyperparameters-dir instead")


def render_file(target: str, hyperparameters: "dict[str, str]") -> bytes:
    """The config file the Kubernetes job had mounted: JSON (typed values) or dotenv (`*.env`)."""
    if target.endswith(".env"):
        lines = [f"{name}={_dotenv_quote(value)}"
                 for name, value in hyperparameter_env("", hyperparameters).items()]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    from shim.util import jsonio

    return jsonio.dumps({k: decoded(v) for k, v in hyperparameters.items()}, indent=True) + b"\n"


def _dotenv_quote(value) -> str:
    """Quote for shim's dotenv reader (and docker's): literal '…' unless the value has a '."""
    if "'" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
    return f'"{escaped}"'


def cap_warnings(hyperparameters: "dict[str, str]", environ: "Mapping[str, str] | None" = None) -> "list[str]":
    """What CreateTrainingJob would refuse: fine here, but say so before the move.

    `environ` is the pod's own environment; variables the platform injects (Kubernetes
    service links, PATH, HOSTNAME, shim's own) are not counted: SageMaker sets its own.
    """
    warnings = []
    if len(hyperparameters) > HP_MAX_KEYS:
        warnings.append(f"{len(hyperparameters)} hyperparameters exceed SageMaker's cap of {HP_MAX_KEYS} "
                        "keys; on SageMaker pass them with --hyperparameters-from ref+s3://…")
    long_keys = sorted(k for k in hyperparameters if len(k) > HP_MAX_KEY)
    if long_keys:
        warnings.append(f"{len(long_keys)} hyperparameter names exceed SageMaker's {HP_MAX_KEY}-character "
                        "key cap; on SageMaker pass them with --hyperparameters-from ref+s3://…")
    long = sorted(k for k, v in hyperparameters.items() if len(v) > HP_MAX_VALUE)
    if long:
        warnings.append(f"hyperparameters {', '.join(long[:5])} exceed SageMaker's {HP_MAX_VALUE}-character "
                        "value cap; on SageMaker pass them with --hyperparameters-from ref+s3://…")
    own = {k: v for k, v in (environ or {}).items() if not _injected(k)}
    big = sorted(k for k, v in own.items() if len(v.encode("utf-8", "replace")) > ENV_MAX_VALUE)
    if len(own) > ENV_MAX_ENTRIES or big:
        what = f"{len(own)} environment variables" if len(own) > ENV_MAX_ENTRIES else \
            f"variables {', '.join(big[:5])} (over {ENV_MAX_VALUE} bytes)"
        warnings.append(f"{what} exceed SageMaker's Environment cap ({ENV_MAX_ENTRIES} entries of "
                        f"{ENV_MAX_VALUE} bytes); on SageMaker fetch them with --env-from ref+s3://…")
    return warnings


# Variables the platform or the image's runtime provides, not the job's author.
INJECTED = ("PATH", "HOSTNAME", "HOME", "TERM", "container", "PWD", "SHLVL", "_")


def _injected(name):
    if name in INJECTED or name.startswith(("KUBERNETES_", "SHIM_")):
        return True
    # Kubernetes service links: FOO_SERVICE_HOST, FOO_SERVICE_PORT[_x], FOO_PORT[_x...]
    return "_SERVICE_HOST" in name or "_SERVICE_PORT" in name or re.search(r"_PORT(_\d+_(TCP|UDP|SCTP).*)?$", name)


def expose(settings: "Any",  # Settings, or the config's PlatformSettings (same attributes)
           fetch: "Callable[[str], Any]", log: "Callable[[str, str], object]") -> "dict[str, str]":
    """On SageMaker (or over a synthesised layout): {env name: value} for the delegate.

    Also writes --hyperparameters-file and --hyperparameters-dir when they are set.
    """
    hyperparameters = gather(settings, fetch)
    hyperparameters.update(read_hyperparameters(settings.sagemaker_root))  # the job's own keys win
    if not hyperparameters:
        log("info", f"no hyperparameters at {path(settings.sagemaker_root, HYPERPARAMETERS)}")
    env = {}
    if settings.hyperparameters_env is not None:
        env = hyperparameter_env(settings.hyperparameters_env, hyperparameters)
        check_exec_limits(env)
    if settings.hyperparameters_file:
        write_file(settings.hyperparameters_file, render_file(settings.hyperparameters_file, hyperparameters),
                   mode=0o644)
    if settings.hyperparameters_dir:
        # A ConfigMap volume's shape: one file per key, `..data` swapped atomically (0644 is
        # the API's defaultMode).
        write_dir(settings.hyperparameters_dir,
                  {k: env_text(v).encode("utf-8") for k, v in hyperparameters.items()}, mode=0o644)
    return env


# -- the layout, synthesised off SageMaker -----------------------------------------------

def resource_config(settings: "Any", environ: "Mapping[str, str]") -> "dict[str, Any]":
    """resourceconfig.json: which host this is among `hosts` (algo-1 … algo-N)."""
    hosts = list(settings.hosts) or [DEFAULT_HOST]
    current = settings.current_host
    if current is None:
        # An indexed Kubernetes Job numbers its pods from 0: pod i is algo-(i+1).
        index = environ.get("JOB_COMPLETION_INDEX", "")
        current = f"algo-{int(index) + 1}" if index.isdigit() else hosts[0]
    if current not in hosts:
        raise usage_error("option --sagemaker-current-host", f"{current} is not one of {', '.join(hosts)}",
                          "list it in platform.sagemaker.hosts")
    return {"current_host": current, "hosts": sorted(hosts), "network_interface_name": settings.network_interface}


def channel_entry(name: str) -> "dict[str, str]":
    """The inputdataconfig.json entry of one channel (File mode, as the SDK's local mode writes)."""
    if not CHANNEL_NAME.match(name):
        raise usage_error(f"channel {show(name)}", "names use letters, digits, '.', '-', '_' (at most 64)",
                          "rename the channel")
    return {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}


def synthesise(settings: "Any", environ: "Mapping[str, str]", fetch: "Callable[[str], Any]",
               fetch_tree: "Callable[[str], Iterator[tuple[str, bytes]]]",
               log: "Callable[[str, str], object]") -> "dict[str, str]":
    """Write the SageMaker training layout below `settings.sagemaker_root`; returns env additions."""
    from shim.util import jsonio

    root = settings.sagemaker_root
    hyperparameters = gather(settings, fetch)
    for warning in cap_warnings(hyperparameters, environ):
        log("warn", warning)
    channels = {name: (ref, channel_entry(name)) for name, ref in sorted(settings.channels.items())}
    resource = resource_config(settings, environ)
    # Every channel is staged, object by object, in a hidden directory before anything visible
    # changes: a failing reference leaves no half layout, and no channel is held in memory.
    data_dir = path(root, DATA_DIR)
    created = _missing_dirs(data_dir)
    staged = []
    try:
        for name, (ref, _) in channels.items():
            target = os.path.join(data_dir, name)
            staged.append((_stage_channel(target, fetch_tree(ref)), target))
    except BaseException:
        for staging, _ in staged:
            shutil.rmtree(staging, ignore_errors=True)
        for directory in created:
            try:
                os.rmdir(directory)
            except OSError:
                pass
        raise
    for directory in OUTPUT_DIRS:
        _makedirs(path(root, directory), for_delegate=path(root, "opt/ml"))
    for staging, target in staged:
        _swap_in(staging, target)
    write_file(path(root, INPUT_DATA_CONFIG),
               jsonio.dumps({name: entry for name, (_, entry) in channels.items()}) + b"\n", mode=0o644)
    write_file(path(root, RESOURCE_CONFIG), jsonio.dumps(resource) + b"\n", mode=0o644)
    # Last: the hyperparameters file is what a toolkit-style image checks for first.
    write_file(path(root, HYPERPARAMETERS), jsonio.dumps(hyperparameters) + b"\n", mode=0o644)
    env = {}
    if settings.job_name:
        env["TRAINING_JOB_NAME"] = settings.job_name
    return env


def _makedirs(directory, for_delegate=None):
    """for_delegate (the /opt/ml directory): directories the delegate writes (model, output,
    checkpoints) that shim creates below it belong to --user's user, or a non-root training
    job could not save its model."""
    from shim.sources.targets import default_owner

    uid, gid = default_owner() if for_delegate else (None, None)
    todo = []
    probe = directory
    while uid is not None and not os.path.exists(probe) and probe not in ("", "/"):
        todo.append(probe)
        probe = os.path.dirname(probe)
    try:
        os.makedirs(directory, exist_ok=True)
        for created in todo:
            if created.startswith(for_delegate + "/"):
                os.chown(created, uid, gid)  # type: ignore[arg-type]  # todo is empty without uid, gid
    except OSError as err:
        raise _layout_error(directory, err) from None


def _layout_error(target, err):
    return ShimError("write", f"SageMaker layout {target}", (err.strerror or str(err)).lower(),
                     "mount a writable volume (emptyDir) at /opt/ml or point --sagemaker-root elsewhere",
                     reason=REASON_SETUP)


def _missing_dirs(directory):
    """`directory` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while directory and not os.path.exists(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return missing


def _stage_channel(target, items):
    """Write a channel's objects, as they arrive, into a hidden sibling of `target`."""
    _makedirs(os.path.dirname(target))
    staging = f"{os.path.dirname(target)}/.{os.path.basename(target)}.shim-new-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        os.mkdir(staging, 0o755)
        for relative, data in items:
            clean = os.path.normpath(relative).lstrip("/")
            if clean.startswith("..") or clean in ("", "."):
                raise usage_error(f"channel {os.path.basename(target)} object {show(relative)}",
                                  "the name leaves the channel directory", "rename the object")
            write_file(os.path.join(staging, clean), data, mode=0o644)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise _layout_error(target, err) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _swap_in(staging, target):
    """Replace `target` (a restart's old channel, if any) with the staged directory."""
    old = f"{os.path.dirname(target)}/.{os.path.basename(target)}.shim-old-{os.getpid()}"
    try:
        if os.path.lexists(target):
            os.rename(target, old)
        os.rename(staging, target)
    except OSError as err:
        raise _layout_error(target, err) from None
    shutil.rmtree(old, ignore_errors=True)


# -- after the run -------------------------------------------------------------------------

def failure_text(reason: str) -> bytes:
    """The first FAILURE_LIMIT bytes of `reason`, cut on a UTF-8 character boundary."""
    data = reason.encode("utf-8", "replace")
    if len(data) <= FAILURE_LIMIT:
        return data
    return data[:FAILURE_LIMIT].decode("utf-8", "ignore").encode("utf-8")


def write_failure(root: str, runtime: str, reason: str, log: "Callable[[str, str], object]") -> bool:
    """Write the failure message where the job type reads it; the algorithm's own one wins."""
    relative = FAILURE_FILES.get(runtime, FAILURE_FILES["sagemaker-training"])
    target = path(root, relative)
    if os.path.exists(target):
        log("info", f"{target} exists: the delegate wrote its own failure reason")
        return False
    write_file(target, failure_text(reason), mode=0o644)
    return True
