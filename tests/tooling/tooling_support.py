"""Helpers of the tooling tier (a unique module name: every tier has a conftest.py)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from support import REPO  # noqa: E402  (tests/ is on sys.path)

CORPUS = Path(__file__).resolve().parent / "corpus"
CHARTS = Path(__file__).resolve().parent / "charts"


def shim_tools(*args, input=None, env=None, cwd=None, timeout=60):
    """Run `shim ARGS…` from this source tree (the runtime CLI dispatching to shimtools)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "shim", *map(str, args)], input=input, capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


def _blob(root, data):
    digest = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_layout(root, platforms, name="latest", single=False):
    """An OCI image layout at `root`: {"amd64": {"Entrypoint": [...], "Cmd": [...]}, …} as an image index
    (or, with single=True and one platform, a bare manifest).  Layers are empty: only configs matter."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    layer = _blob(root, b"")
    manifests = []
    for arch, conf in platforms.items():
        config = json.dumps({"architecture": arch, "os": "linux", "config": conf,
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(root, config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
        }).encode()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(root, manifest),
                          "platform": {"architecture": arch, "os": "linux"}})
    if single:
        top = manifests[0]
    else:
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": manifests}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(root, index)}
    top = {k: v for k, v in top.items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": name}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return top["digest"]


def k8s_expand(text, env):
    """Kubernetes' $(VAR) expansion of command/args (third_party/forked/golang/expansion, Expand +
    tryReadVariableName): `$$` -> `$`, `$(NAME)` -> its value when defined, else left as written."""
    out, checkpoint, cursor = [], 0, 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                read, is_var, advance = "$", False, 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    read, is_var, advance = "$(", False, 1
                else:
                    read, is_var, advance = rest[1:close], True, close + 1
            else:
                read, is_var, advance = "$" + rest[0], False, 1
            out.append(env.get(read, f"$({read})") if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def container_argv(container, image_argv=None):
    """What the container runs, before expansion: Docker's ENTRYPOINT/CMD rule with the pod's command/args."""
    entry, cmd = image_argv or ([], [])
    if container.get("command"):
        return list(container["command"]) + list(container.get("args") or [])
    return list(entry) + (list(container["args"]) if container.get("args") else list(cmd))
