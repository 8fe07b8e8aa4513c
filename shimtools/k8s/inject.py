"""Put shim in front of a pod's containers, and take it out again.

For each selected container: mount the shim volume read-only at /shim, set
`command: [/shim/shim]` and `args: [shim options…, --, original command…,
original args…]`.  Kubernetes expands `$(VAR)` in command and args, so the
original command and args are copied verbatim (they expand exactly as before),
while words that come from the image's ENTRYPOINT/CMD, which Kubernetes never
expanded, get every `$` doubled (`$$` is Kubernetes' escape for `$`).

A container without `command` runs its image's ENTRYPOINT, plus CMD unless the
container has `args` (Docker's rule: args replace CMD, never ENTRYPOINT).  The
lookup finds them; with `lookup="in-pod"` they go into `--image-entrypoint` as a
per-platform map and shim picks its node's entry at start (Tekton's platform
command map).

The pod gets the volume and, in emptydir mode, the installer init container of
deploy/emptydir-deployment.yaml (restricted Pod Security, read-only root);
in pvc mode the versioned claim of deploy/pvc-versioned.yaml, mounted read-only.
What was changed is recorded in one annotation, so a second injection changes
nothing and `remove` restores the original exactly.  Works on plain dicts (the
webhook) and on ruamel round-trip maps (the CLI, comments kept).
"""

import json
from dataclasses import dataclass, field

from shim.errors import ShimError

from .manifests import describe, pod_templates

VOLUME = "shim"
MOUNT = "/shim"
INSTALL_MOUNT = "/install"  # not /shim: that is the binary itself inside the tools image
INSTALLER = "install-shim"
ANNOTATION = "shim.dev/injected"  # JSON record of what inject changed
OPT_OUT = "shim.dev/inject"  # "false" on a pod: leave it alone
DEFAULT_CLAIM = "shim-tools"
ARCH_LABEL = "kubernetes.io/arch"
RESTRICTED = {  # the restricted Pod Security profile, and a read-only root
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
INSTALLER_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}


@dataclass(frozen=True)
class Settings:
    tools_image: str = ""
    mode: str = "emptydir"  # emptydir | pvc
    version: str = ""  # pvc: the version directory, <version>-<digest12>
    claim: str = DEFAULT_CLAIM
    arch: str = ""  # pvc: node arch of the binary; default the pod's nodeSelector, else amd64
    containers: tuple = ()  # names to inject; empty: every container
    init_containers: bool = False
    shim_args: tuple = ()
    lookup: str = "registry"  # registry | in-pod | off
    platform: str = ""  # registry lookup of a multi-arch image: which platform's command to write
    pin_digest: bool = False

    def check(self):
        if self.mode not in ("emptydir", "pvc"):
            raise ShimError("parse", "--mode", f"unknown mode {self.mode!r}", "use emptydir or pvc")
        if self.mode == "emptydir" and not self.tools_image:
            raise ShimError("parse", "--tools-image", "missing", "name the tools image (REGISTRY/shim-tools@sha256:…)")
        if self.mode == "pvc" and not self.version:
            raise ShimError("parse", "--version", "missing for --mode pvc",
                            "give the version directory the populator Job printed (e.g. 0.1.0-0123456789ab)")
        if self.lookup not in ("registry", "in-pod", "off"):
            raise ShimError("parse", "--lookup", f"unknown value {self.lookup!r}", "use registry, in-pod or off")
        return self


def escape(words):
    """Words Kubernetes must pass through literally: `$` -> `$$` (its escape)."""
    return [w.replace("$", "$$") for w in words or []]


def _flow(words):
    """A list written in flow style when the document is round-trip YAML."""
    try:
        from ruamel.yaml.comments import CommentedSeq
    except ImportError:
        return list(words)
    seq = CommentedSeq(words)
    seq.fa.set_flow_style()
    return seq


def _set_after(mapping, key, value, after=()):
    """mapping[key] = value, a new key placed after the first existing key of `after` (order kept)."""
    if key in mapping or not hasattr(mapping, "insert"):
        mapping[key] = value
        return
    keys = list(mapping.keys())
    for anchor in after:
        if anchor in keys:
            mapping.insert(keys.index(anchor) + 1, key, value)
            return
    mapping[key] = value


@dataclass
class Injector:
    settings: Settings
    lookup: object = None  # shimtools.registry.oci.Lookup, needed for containers without command
    notes: list = field(default_factory=list)  # warnings for stderr
    deadline: float = None

    # -- documents ----------------------------------------------------------------------

    def inject(self, doc):
        """Inject every pod template in `doc`; True when anything changed."""
        changed = False
        for workload, template in pod_templates(doc):
            changed |= self.inject_template(workload, template)
        return changed

    def remove(self, doc):
        changed = False
        for workload, template in pod_templates(doc):
            changed |= self.remove_template(workload, template)
        return changed

    # -- one pod template --------------------------------------------------------------

    def _binary(self, spec):
        if self.settings.mode == "emptydir":
            return f"{MOUNT}/shim"
        return f"{MOUNT}/{self.settings.version}/shim-linux-{self._arch(spec)}"

    def _arch(self, spec):
        selector = spec.get("nodeSelector") or {}
        return selector.get(ARCH_LABEL) or self.settings.arch or "amd64"

    def inject_template(self, workload, template):
        meta = template.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if str(annotations.get(OPT_OUT, "")).lower() == "false":
            self.notes.append(f"{describe(workload)}: skipped, annotated {OPT_OUT}: \"false\"")
            return False
        record = json.loads(annotations.get(ANNOTATION) or '{"containers": {}, "added": []}')
        spec = template["spec"]
        binary = self._binary(spec)
        injected_any = False
        for key, container in self._selected(spec):
            name = container.get("name", "")
            command = list(container.get("command") or [])
            if name in record["containers"] or (command and command[0].startswith(MOUNT + "/")):
                continue  # already in front of this one
            original = {k: list(container[k]) for k in ("command", "args") if container.get(k)}
            original["image"] = container.get("image")
            container_args = self._new_args(workload, container)
            _set_after(container, "command", _flow([binary]), after=("image", "name"))
            _set_after(container, "args", _flow(container_args), after=("command",))
            mounts = container.get("volumeMounts")
            if mounts is None:
                mounts = []
                _set_after(container, "volumeMounts", mounts)
            if not any(m.get("mountPath") == MOUNT for m in mounts):
                mounts.append({"name": VOLUME, "mountPath": MOUNT, "readOnly": True})
            record["containers"][name] = original
            injected_any = True
        if not injected_any:
            return False
        record["added"] = sorted(set(record["added"]) | set(self._add_pod_parts(spec)))
        if not isinstance(template.get("metadata"), dict):
            template["metadata"] = {}
        if not isinstance(template["metadata"].get("annotations"), dict):
            template["metadata"]["annotations"] = {}
        template["metadata"]["annotations"][ANNOTATION] = json.dumps(record, sort_keys=True, separators=(",", ":"))
        return True

    def _selected(self, spec):
        wanted = set(self.settings.containers)
        keys = ("initContainers", "containers") if self.settings.init_containers else ("containers",)
        for key in keys:
            for container in spec.get(key) or []:
                if not isinstance(container, dict) or container.get("name") == INSTALLER:
                    continue
                if wanted and container.get("name") not in wanted:
                    continue
                yield key, container

    def _add_pod_parts(self, spec):
        """Volume, installer and node selector, each only when missing; returns what was added."""
        added = []
        volumes = spec.get("volumes")
        if volumes is None:
            volumes = []
            spec["volumes"] = volumes
        if not any(v.get("name") == VOLUME for v in volumes):
            if self.settings.mode == "emptydir":
                volumes.append({"name": VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
            else:
                volumes.append({"name": VOLUME, "persistentVolumeClaim": {"claimName": self.settings.claim,
                                                                          "readOnly": True}})
            added.append("volume")
        if self.settings.mode == "emptydir":
            inits = spec.get("initContainers")
            if inits is None:
                inits = []
                if "containers" in spec and hasattr(spec, "insert"):  # read in pod order: init first
                    spec.insert(list(spec.keys()).index("containers"), "initContainers", inits)
                else:
                    spec["initContainers"] = inits
            if not any(c.get("name") == INSTALLER for c in inits):
                # First: opted-in init containers after it need the binary already.
                inits.insert(0, self._installer())
                added.append("initContainer")
        else:
            selector = spec.get("nodeSelector")
            if not isinstance(selector, dict) or ARCH_LABEL not in selector:
                if not isinstance(selector, dict):
                    spec["nodeSelector"] = {}
                # The binary's name carries the arch: the pod must land on a node of that arch.
                spec["nodeSelector"][ARCH_LABEL] = self._arch(spec)
                added.append("nodeSelector")
        return added

    def _installer(self):
        return {
            "name": INSTALLER,
            "image": self.settings.tools_image,
            "args": _flow([INSTALL_MOUNT]),
            "resources": json.loads(json.dumps(INSTALLER_RESOURCES)),
            "securityContext": json.loads(json.dumps(RESTRICTED)),
            "volumeMounts": [{"name": VOLUME, "mountPath": INSTALL_MOUNT}],
        }

    def _new_args(self, workload, container):
        """args for the shimmed container: shim options, then what it ran before."""
        shim = list(self.settings.shim_args)
        command = list(container.get("command") or [])
        args = list(container.get("args") or [])
        if command:
            return shim + ["--", *command, *args]
        where = f"container {container.get('name', '?')} of {describe(workload)}"
        image = container.get("image")
        if self.settings.lookup == "off" or self.lookup is None:
            raise ShimError("inject", where, "has no command, and image lookup is off",
                            "set the container's command, or drop --lookup off so the image's ENTRYPOINT is read")
        if not image:
            raise ShimError("inject", where, "has neither command nor image", "set the container's image")
        info = self.lookup.lookup(image, self.deadline)
        if self.settings.pin_digest and info.pinnable and "@" not in image:
            from shimtools.registry.reference import parse

            container["image"] = parse(image).pinned(info.digest)
        if self.settings.lookup == "in-pod":
            per_platform = {}
            for plat, conf in sorted(info.platforms.items()):
                entry = escape(conf.get("Entrypoint"))
                rest = args if args else escape(conf.get("Cmd"))
                if not entry and not rest:
                    raise ShimError("inject", where, f"image {image} has neither ENTRYPOINT nor CMD for {plat}",
                                    "set the container's command")
                per_platform[plat] = {"Entrypoint": entry, "Cmd": rest}
            if any("$(" in a for a in args):
                self.notes.append(f"{where}: $(VAR) in args is expanded inside the --image-entrypoint JSON; "
                                  "a value with \" or \\ would break it (set command to avoid the lookup)")
            return shim + ["--image-entrypoint", json.dumps(per_platform, separators=(",", ":"))]
        if self.settings.platform:
            conf = info.config(self.settings.platform)
        else:
            conf = info.same_everywhere()
            if conf is None:
                raise ShimError("inject", where, f"image {image} runs a different command on each platform "
                                f"({', '.join(sorted(info.platforms))})",
                                "use --lookup in-pod (shim picks per node) or --platform PLATFORM")
        argv = escape(conf.get("Entrypoint")) + (args if args else escape(conf.get("Cmd")))
        if not argv:
            raise ShimError("inject", where, f"image {image} has neither ENTRYPOINT nor CMD",
                            "set the container's command")
        return shim + ["--", *argv]

    # -- removal -------------------------------------------------------------------------

    def remove_template(self, workload, template):
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if ANNOTATION not in annotations:
            return False
        record = json.loads(annotations[ANNOTATION])
        spec = template["spec"]
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                original = record["containers"].get(container.get("name"))
                if original is None or key == "initContainers" and container.get("name") == INSTALLER:
                    continue
                for field_name in ("command", "args"):
                    if original.get(field_name):
                        container[field_name] = _flow(original[field_name])
                    else:
                        container.pop(field_name, None)
                if original.get("image"):
                    container["image"] = original["image"]
                mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME]
                if mounts:
                    container["volumeMounts"][:] = mounts
                else:
                    container.pop("volumeMounts", None)
        added = set(record.get("added", []))
        if "volume" in added:
            spec["volumes"][:] = [v for v in spec.get("volumes") or [] if v.get("name") != VOLUME]
            if not spec["volumes"]:
                del spec["volumes"]
        if "initContainer" in added:
            spec["initContainers"][:] = [c for c in spec.get("initContainers") or [] if c.get("name") != INSTALLER]
            if not spec["initContainers"]:
                del spec["initContainers"]
        if "nodeSelector" in added and isinstance(spec.get("nodeSelector"), dict):
            spec["nodeSelector"].pop(ARCH_LABEL, None)
            if not spec["nodeSelector"]:
                del spec["nodeSelector"]
        del annotations[ANNOTATION]
        if not annotations:
            del template["metadata"]["annotations"]
            if not template["metadata"]:
                del template["metadata"]
        return True
