"""Which platform runs this container, decided from documented markers.

A pure function of (environment, a file port, the container's first argument):
the rules below are tried in order, most specific first, and the first whose
markers hold wins. Platforms nest (Batch runs on ECS or EKS, Knative on
Kubernetes, SageMaker on Docker), so the order matters more than any one marker;
every other rule that also held is reported under `also`.

Sources of the markers (see ../shared/research/platform-contracts.md, §1 and §3):
  sagemaker-*   SageMaker developer guide (TRAINING_JOB_ARN, TRAINING_JOB_NAME off Kubernetes;
                processingjobconfig.json;
                resource-metadata.json for Studio/notebooks); the SDK's experiments/_environment.py
                tests the same files. Endpoints have no documented marker (sagemaker-python-sdk
                issue #1338): the leading `serve` word and /opt/ml/model off Kubernetes are used.
  batch         docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html (AWS_BATCH_ prefix)
  lambda        Lambda "defined runtime environment variables"
  ecs           task metadata endpoint v4 (v3 as fallback)
  cloud-run*    cloud.google.com/run/docs/container-contract (K_SERVICE…; CLOUD_RUN_JOB for jobs)
  knative       knative/specs serving/runtime-contract.md (K_REVISION, K_CONFIGURATION, K_SERVICE),
                on Kubernetes; Cloud Run sets K_* without the Kubernetes service variables
  azure-container-apps  learn.microsoft.com …/container-apps/environment-variables (built-in variables)
  nomad         developer.hashicorp.com/nomad/docs/runtime/environment
  kubernetes    the kubelet always injects KUBERNETES_SERVICE_HOST (kubelet_pods.go getServiceEnvVarMap)
  podman/docker /run/.containerenv (podman-run(1)); /.dockerenv (moby daemon/initlayer)
"""

import os

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

RUNTIMES = (
    "sagemaker-training", "sagemaker-processing", "sagemaker-endpoint", "sagemaker-studio",
    "batch", "lambda", "ecs", "cloud-run-job", "cloud-run", "knative",
    "azure-container-apps", "nomad", "kubernetes", "podman", "docker", "local",
)
SAGEMAKER = tuple(r for r in RUNTIMES if r.startswith("sagemaker-"))


# -- markers: (kind, argument) pairs; `_holds` returns a marker's evidence or None ---------
# Plain tuples, not classes: this table is read on every `shim -- cmd` start.
ENV, NOT_ENV, FILE, DIR, ARG = "env", "not-env", "file", "dir", "arg"
K8S = (ENV, "KUBERNETES_SERVICE_HOST")
NOT_K8S = (NOT_ENV, "KUBERNETES_SERVICE_HOST")
KNATIVE = ((ENV, "K_SERVICE"), (ENV, "K_REVISION"), (ENV, "K_CONFIGURATION"))

# (runtime, any of these, all of these): most specific first; the first rule that holds decides.
RULES = (
    ("sagemaker-training", ((ENV, "TRAINING_JOB_ARN"),), ()),
    # The name alone is also what a pod may set for itself (and the SDK's local mode sets):
    # it counts off Kubernetes only.
    ("sagemaker-training", ((ENV, "TRAINING_JOB_NAME"),), (NOT_K8S,)),
    ("sagemaker-processing", ((FILE, "/opt/ml/config/processingjobconfig.json"),), ()),
    ("sagemaker-endpoint", (), ((ARG, "serve"), (DIR, "/opt/ml/model"), NOT_K8S)),
    ("sagemaker-studio", ((FILE, "/opt/ml/metadata/resource-metadata.json"),), ()),
    ("batch", ((ENV, "AWS_BATCH_JOB_ID"),), ()),
    ("lambda", ((ENV, "AWS_LAMBDA_FUNCTION_NAME"), (ENV, "AWS_LAMBDA_RUNTIME_API")), ()),
    ("ecs", ((ENV, "ECS_CONTAINER_METADATA_URI_V4"), (ENV, "ECS_CONTAINER_METADATA_URI")), ()),
    ("cloud-run-job", ((ENV, "CLOUD_RUN_JOB"),), ()),
    ("knative", KNATIVE, (K8S,)),
    ("cloud-run", ((ENV, "K_SERVICE"),), (NOT_K8S,)),
    ("knative", KNATIVE[1:], ()),  # K_REVISION without K_SERVICE: Knative's contract only
    ("azure-container-apps", ((ENV, "CONTAINER_APP_NAME"), (ENV, "CONTAINER_APP_JOB_NAME")), ()),
    ("nomad", ((ENV, "NOMAD_ALLOC_ID"),), ()),
    ("kubernetes", (K8S, (FILE, "/var/run/secrets/kubernetes.io/serviceaccount/namespace")), ()),
    ("podman", ((FILE, "/run/.containerenv"),), ()),
    ("docker", ((FILE, "/.dockerenv"),), ()),
)


def _holds(marker, environ, files, first_word):
    """The evidence string of `marker` (names only, never a value), or None."""
    kind, arg = marker
    if kind == ENV:
        return f"env {arg} is set" if environ.get(arg) else None
    if kind == NOT_ENV:
        return None if environ.get(arg) else f"env {arg} is not set"
    if kind == FILE:
        return f"file {arg} exists" if files.exists(arg) else None
    if kind == DIR:
        return f"dir {arg} exists" if files.isdir(arg) else None
    return f"first argument is {arg}" if first_word == arg else None


def _evidence(rule, environ, files, first_word):
    """Evidence for `rule`: any one of its `any` markers and every one of its `all` markers."""
    _, any_of, all_of = rule
    found = [e for e in (_holds(m, environ, files, first_word) for m in any_of) if e]
    if any_of and not found:
        return None
    required = [_holds(m, environ, files, first_word) for m in all_of]
    return None if not all(required) else found + required


class HostFiles:
    """The file port over the real filesystem, below `root` (tests pass a temp dir);
    /opt/ml paths below `opt_ml_root` when given (--sagemaker-root)."""

    def __init__(self, root="/", opt_ml_root=None):
        self.root, self.opt_ml_root = root, opt_ml_root

    def _path(self, path):
        if self.opt_ml_root and (path + "/").startswith("/opt/ml/"):
            return os.path.join(self.opt_ml_root, path.lstrip("/"))
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path: str) -> bool:
        return os.path.exists(self._path(path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self._path(path))


class Detection:
    """The decision: `runtime`, how it was decided (`source`), and why (`evidence`)."""

    __slots__ = ("also", "evidence", "runtime", "source")

    def __init__(self, runtime, source, evidence, also=()):
        self.runtime, self.source, self.evidence, self.also = runtime, source, list(evidence), list(also)

    def as_dict(self) -> "dict[str, Any]":
        return {"runtime": self.runtime, "source": self.source, "evidence": self.evidence,
                "also": self.also}

    @property
    def sagemaker(self) -> bool:
        return self.runtime in SAGEMAKER


def detect(environ: "Mapping[str, str]", files: "HostFiles", first_word: "str | None" = None) -> "Detection":
    """Try every rule in order; the first that holds decides, the rest go to `also`."""
    chosen, also = None, []
    for rule in RULES:
        evidence = _evidence(rule, environ, files, first_word)
        if evidence is None:
            continue
        if chosen is None:
            chosen = Detection(rule[0], "detected", evidence)
        elif rule[0] != chosen.runtime and rule[0] not in also:
            also.append(rule[0])
    if chosen is None:
        return Detection("local", "detected", ["no platform marker found"])
    chosen.also = also
    return chosen


def decide(override: "str | None", environ: "Mapping[str, str]", files: "HostFiles",
           first_word: "str | None" = None) -> "Detection":
    """`--runtime` (already validated against RUNTIMES) wins over detection."""
    if override:
        return Detection(override, "override", ["--runtime / SHIM_RUNTIME given"])
    return detect(environ, files, first_word)


# -- used while the configuration resolves -------------------------------------------------

def profile_for(runtime: str, profiles: object) -> "str | None":
    """The profile a runtime applies: its own name, else a shorter family name
    ("sagemaker-training", then "sagemaker"; "cloud-run-job", then "cloud-run", "cloud")."""
    if not isinstance(profiles, dict):
        return None
    parts = runtime.split("-")
    for n in range(len(parts), 0, -1):
        name = "-".join(parts[:n])
        if name in profiles:
            return name
    return None


def for_config(override: "str | None", environ: "Mapping[str, str]", first_word: "str | None",
               sagemaker_root: "str | None" = "/") -> "Detection":
    """The decision the run uses: /opt/ml markers are read below `sagemaker_root`."""
    return decide(override, environ, HostFiles("/", sagemaker_root), first_word)
