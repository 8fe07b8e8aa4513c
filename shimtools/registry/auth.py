"""Registry credentials, found where docker, podman and kubelet keep them.

Order: files given with --auth-file / --pull-secret (a docker config.json, a
legacy .dockercfg, or a Kubernetes Secret of type dockerconfigjson/dockercfg
as YAML or JSON), then REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
${DOCKER_CONFIG:-~/.docker}/config.json.  Within a file the most specific key
wins (`host/namespace` before `host`), as in containers-auth.json(5).
`credHelpers` / `credsStore` run `docker-credential-NAME get`.  Secrets are never
put into messages.

Hand-written on purpose: docker-py's docker.auth reads config.json and runs
credential helpers, but knows neither containers-auth.json's per-namespace keys,
nor REGISTRY_AUTH_FILE, nor Kubernetes pull Secrets (.dockercfg or
.dockerconfigjson, as YAML), and brings requests and urllib3 into the tools image.
"""

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass

from shim.errors import ShimError

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: str  # the file it came from, for messages

    def basic_header(self):
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def __repr__(self):  # never print the password
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def default_files(env=None):
    env = os.environ if env is None else env
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    docker_dir = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    files.append(os.path.join(docker_dir, "config.json"))
    return files


def load_config(path):
    """The {"auths": …, "credHelpers": …, "credsStore": …} of one file; {} when it does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ShimError("read credentials", path, (err.strerror or str(err)).lower(),
                        "check the file's permissions") from None
    return _normalise(_parse(text, path), path)


def _parse(text, path):
    try:
        return json.loads(text)
    except ValueError:
        pass
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except (YAMLError, TypeError, ValueError, RecursionError):  # constructor errors too (`? [a]`, 2026-13-45)
        raise ShimError("read credentials", path, "neither JSON nor YAML",
                        "give a docker config.json or a kubernetes.io/dockerconfigjson Secret") from None


def _normalise(doc, path):
    if not isinstance(doc, dict):
        raise ShimError("read credentials", path, "not a mapping",
                        "give a docker config.json or a kubernetes.io/dockerconfigjson Secret")
    if doc.get("kind") == "Secret":  # an imagePullSecret as kubectl shows it
        data = doc.get("data") or {}
        string_data = doc.get("stringData") or {}
        if not isinstance(data, dict) or not isinstance(string_data, dict) or not all(
                isinstance(v, str) for v in (*data.values(), *string_data.values())):
            raise ShimError("read credentials", path, "the Secret's data and stringData must map keys to strings",
                            "paste the Secret as `kubectl get secret -o yaml` prints it")
        for key in (".dockerconfigjson", ".dockercfg"):
            raw = string_data.get(key)
            if raw is None and key in data:
                try:
                    raw = base64.b64decode(data[key]).decode()
                except (ValueError, TypeError):
                    raise ShimError("read credentials", path, f"data[{key}] is not base64",
                                    "paste the Secret as `kubectl get secret -o yaml` prints it") from None
            if raw is not None:
                return _normalise(_parse(raw, path), path)
        raise ShimError("read credentials", path, "Secret has no .dockerconfigjson or .dockercfg",
                        "use a Secret of type kubernetes.io/dockerconfigjson")
    if not ("auths" in doc or "credHelpers" in doc or "credsStore" in doc):
        doc = {"auths": doc}  # legacy .dockercfg: hosts at the top level
    auths, helpers, store = doc.get("auths") or {}, doc.get("credHelpers") or {}, doc.get("credsStore") or ""
    helpers_ok = isinstance(helpers, dict) and all(isinstance(k, str) and _helper_name(v) for k, v in helpers.items())
    if not isinstance(auths, dict) or not all(isinstance(k, str) for k in auths) or not helpers_ok \
            or not (store == "" or _helper_name(store)):
        raise ShimError("read credentials", path, "auths must map registries to entries, credHelpers registries to "
                        "helper names, credsStore must be a helper name",
                        "give a docker config.json or a kubernetes.io/dockerconfigjson Secret")
    return {"auths": auths, "credHelpers": helpers, "credsStore": store}


def _helper_name(name):
    """A docker-credential-NAME suffix: a plain word, never a path."""
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) is not None


def _key_host(key):
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    key = key.rstrip("/")
    if key.endswith("/v1") or key.endswith("/v2"):
        key = key[:-3]
    return key


def _matches(key, host, repository):
    """Specificity (longer is better) of `key` for host/repository, or -1."""
    key = _key_host(key)
    hosts = DOCKER_HUB_KEYS if host in DOCKER_HUB_KEYS else (host,)
    for h in hosts:
        h = _key_host(h)
        if key == h:
            return len(key)
        if key.startswith(h + "/") and (f"{h}/{repository}" + "/").startswith(key + "/"):
            return len(key)
    return -1


def _from_entry(entry, source):
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, TypeError):
            raise ShimError("read credentials", source, "an `auth` value is not base64 of user:password",
                            "log in again to rewrite the file") from None
        return Credentials(user, password, source)
    if entry.get("username"):
        if not isinstance(entry["username"], str) or not isinstance(entry.get("password", ""), str):
            raise ShimError("read credentials", source, "a username or password is not a string",
                            "log in again to rewrite the file")
        return Credentials(entry["username"], entry.get("password", ""), source)
    if entry.get("identitytoken"):
        if not isinstance(entry["identitytoken"], str):
            raise ShimError("read credentials", source, "an identitytoken is not a string",
                            "log in again to rewrite the file")
        return Credentials("<token>", entry["identitytoken"], source)
    return None


def _helper(name, host, source):
    try:
        proc = subprocess.run([f"docker-credential-{name}", "get"], input=host, capture_output=True, text=True,
                              timeout=30)
    except OSError:
        raise ShimError("read credentials", source, f"credential helper docker-credential-{name} is not installed",
                        f"install it, or log in with `podman login {host}` into REGISTRY_AUTH_FILE") from None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
        return Credentials(data["Username"], data["Secret"], f"docker-credential-{name}")
    except (ValueError, KeyError, TypeError):
        return None


def find(host, repository, files):
    """Credentials for host/repository from the first file that has some, else None."""
    for path in files:
        config = load_config(path)
        best, best_len = None, -1
        for key, entry in (config.get("auths") or {}).items():
            length = _matches(key, host, repository)
            if length > best_len:
                creds = _from_entry(entry, path)
                if creds is not None:
                    best, best_len = creds, length
        if best is not None:
            return best
        helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
        if helper:
            creds = _helper(helper, host, path)
            if creds is not None:
                return creds
    return None
