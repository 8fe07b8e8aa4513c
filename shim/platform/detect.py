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

RUNTIMES = (
    "sagemaker-training", "sagemaker-processing", "sagemaker-endpoint", "sagemaker-studio",
    "batch", "lambda", "ecs", "cloud-run-job", "cloud-run", "knative",
    "azure-container-apps", "nomad", "kubernetes", "podman", "docker", "local",
)
SAGEMAKER = tuple(r for r in RUNTIMES if r.startswith("sagemaker-"))


# -- markers: each returns its evidence string when it holds, else None ------------------

class Env:
    """An environment variable set to a non-empty value (only its name is reported)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, probe):
        return f"env {self.name} is set" if probe.environ.get(self.name) else None


class File:
    def __init__(self, path, kind="file"):
        self.path, self.kind = path, kind

    def __call__(self, probe):
        found = probe.files.isdir(self.path) if self.kind == "dir" else probe.files.exists(self.path)
        return f"{self.kind} {self.path} exists" if found else None


class Arg:
    """The container's first argument (SageMaker starts images as `IMAGE train|serve`)."""

    def __init__(self, word):
        self.word = word

    def __call__(self, probe):
        return f"first argument is {self.word}" if probe.first_word == self.word else None


class Not:
    def __init__(self, marker, text):
        self.marker, self.text = marker, text

    def __call__(self, probe):
        return None if self.marker(probe) else self.text


class Rule:
    """`runtime` holds when any of `any_of` holds and every one of `all_of` holds."""

    def __init__(self, runtime, any_of=(), all_of=()):
        self.runtime, self.any_of, self.all_of = runtime, any_of, all_of

    def evidence(self, probe):
        found = [e for e in (m(probe) for m in self.any_of) if e]
        if self.any_of and not found:
            return None
        required = [m(probe) for m in self.all_of]
        if not all(required):
            return None
        return found + required


K8S = Env("KUBERNETES_SERVICE_HOST")
NOT_K8S = Not(K8S, "env KUBERNETES_SERVICE_HOST is not set")
KNATIVE = (Env("K_SERVICE"), Env("K_REVISION"), Env("K_CONFIGURATION"))

# Most specific first: the first rule that holds decides.
RULES = (
    Rule("sagemaker-training", any_of=(Env("TRAINING_JOB_ARN"),)),
    # The name alone is also what a pod may set for itself (and the SDK's local mode sets):
    # it counts off Kubernetes only.
    Rule("sagemaker-training", any_of=(Env("TRAINING_JOB_NAME"),), all_of=(NOT_K8S,)),
    Rule("sagemaker-processing", any_of=(File("/opt/ml/config/processingjobconfig.json"),)),
    Rule("sagemaker-endpoint", all_of=(Arg("serve"), File("/opt/ml/model", "dir"), NOT_K8S)),
    Rule("sagemaker-studio", any_of=(File("/opt/ml/metadata/resource-metadata.json"),)),
    Rule("batch", any_of=(Env("AWS_BATCH_JOB_ID"),)),
    Rule("lambda", any_of=(Env("AWS_LAMBDA_FUNCTION_NAME"), Env("AWS_LAMBDA_RUNTIME_API"))),
    Rule("ecs", any_of=(Env("ECS_CONTAINER_METADATA_URI_V4"), Env("ECS_CONTAINER_METADATA_URI"))),
    Rule("cloud-run-job", any_of=(Env("CLOUD_RUN_JOB"),)),
    Rule("knative", any_of=KNATIVE, all_of=(K8S,)),
    Rule("cloud-run", any_of=(Env("K_SERVICE"),), all_of=(NOT_K8S,)),
    Rule("knative", any_of=KNATIVE[1:]),  # K_REVISION without K_SERVICE: Knative's contract only
    Rule("azure-container-apps", any_of=(Env("CONTAINER_APP_NAME"), Env("CONTAINER_APP_JOB_NAME"))),
    Rule("nomad", any_of=(Env("NOMAD_ALLOC_ID"),)),
    Rule("kubernetes", any_of=(K8S, File("/var/run/secrets/kubernetes.io/serviceaccount/namespace"))),
    Rule("podman", any_of=(File("/run/.containerenv"),)),
    Rule("docker", any_of=(File("/.dockerenv"),)),
)


class HostFiles:
    """The file port over the real filesystem, below `root` (tests pass a temp dir);
    /opt/ml paths below `opt_ml_root` when given (--sagemaker-root)."""

    def __init__(self, root="/", opt_ml_root=None):
        self.root, self.opt_ml_root = root, opt_ml_root

    def _path(self, path):
        if self.opt_ml_root and (path + "/").startswith("/opt/ml/"):
            return os.path.join(self.opt_ml_root, path.lstrip("/"))
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path):
        return os.path.exists(self._path(path))

    def isdir(self, path):
        return os.path.isdir(self._path(path))


class Probe:
    __slots__ = ("environ", "files", "first_word")

    def __init__(self, environ, files, first_word):
        self.environ, self.files, self.first_word = environ, files, first_word


class Detection:
    """The decision: `runtime`, how it was decided (`source`), and why (`evidence`)."""

    __slots__ = ("runtime", "source", "evidence", "also")

    def __init__(self, runtime, source, evidence, also=()):
        self.runtime, self.source, self.evidence, self.also = runtime, source, list(evidence), list(also)

    def as_dict(self):
        return {"runtime": self.runtime, "source": self.source, "evidence": self.evidence,
                "also": self.also}

    @property
    def sagemaker(self):
        return self.runtime in SAGEMAKER


def detect(environ, files, first_word=None):
    """Try every rule in order; the first that holds decides, the rest go to `also`."""
    probe = Probe(environ, files, first_word)
    chosen, also = None, []
    for rule in RULES:
        evidence = rule.evidence(probe)
        if evidence is None:
            continue
        if chosen is None:
            chosen = Detection(rule.runtime, "detected", evidence)
        elif rule.runtime != chosen.runtime and rule.runtime not in also:
            also.append(rule.runtime)
    if chosen is None:
        return Detection("local", "detected", ["no platform marker found"])
    chosen.also = also
    return chosen


def decide(override, environ, files, first_word=None):
    """`--runtime` (already validated against RUNTIMES) wins over detection."""
    if override:
        return Detection(override, "override", ["--runtime / SHIM_RUNTIME given"])
    return detect(environ, files, first_word)


# -- used while the configuration resolves -------------------------------------------------

def profile_for(runtime, profiles):
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


def for_config(override, environ, first_word, sagemaker_root="/"):
    """The decision the run uses: /opt/ml markers are read below `sagemaker_root`."""
    return decide(override, environ, HostFiles("/", sagemaker_root), first_word)
