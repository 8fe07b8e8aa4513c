"""Find an image's ENTRYPOINT and CMD, per platform, wherever the image lives.

    lookup = Lookup(sources={"app:1": "oci-archive:/tmp/app.tar"}, auth_files=[...])
    info = lookup.lookup("registry.example/app:1")
    info.platforms  -> {"linux/amd64": {"Entrypoint": [...], "Cmd": [...]}, "linux/arm64": {...}}
    info.digest     -> the index or manifest digest to pin (registry images)

Locations: `oci:DIR[:REF]` (OCI layout directory), `oci-archive:FILE[:REF]`,
`containers-storage:REF` (read with skopeo), `docker://REF` or a plain reference
(the distribution API).  A plain `localhost/NAME` (no port) is podman's local
name, so it is read from containers-storage.

An image index becomes one entry per platform (attestation manifests and
`unknown/unknown` skipped, as Tekton does); a single manifest becomes one entry
from its config's os/architecture/variant.  Results are cached on disk by
digest: content-addressed, so an entry never goes stale.

The registry client is written on urllib rather than a registry library
because it is small, must say exactly which request failed with which status
(Tekton users' top complaint is a lookup failing without saying why), and must
share the trust and credential rules documented for the CLI.
"""

import hashlib
import json
import os
import re
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from shim.errors import ShimError

from ..messages import show
from . import auth
from .reference import parse

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST))
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
OP = "look up image"
MAX_DOCUMENT = 4 << 20  # manifests and configs are small; refuse anything absurd


@dataclass
class ImageInfo:
    """What the lookup found: {platform: {"Entrypoint": [...] | None, "Cmd": [...] | None}}."""
    image: str
    platforms: dict
    digest: str = ""  # of the index/manifest the reference resolved to ("" when unknown)
    source: str = ""
    pinnable: bool = False  # a registry image, so image@digest names what was looked up

    def argv(self, platform):
        conf = self.config(platform)
        return list(conf.get("Entrypoint") or []) + list(conf.get("Cmd") or [])

    def config(self, platform):
        if platform in self.platforms:
            return self.platforms[platform]
        for key in sorted(self.platforms):  # linux/arm64 matches linux/arm64/v8
            if key.startswith(platform + "/") or platform.startswith(key + "/"):
                return self.platforms[key]
        raise ShimError(OP, self.image, f"it has no {platform} image (it has {', '.join(sorted(self.platforms))})",
                        "choose another --platform, or use --lookup in-pod")

    def same_everywhere(self):
        """The one config every platform shares, or None when they differ."""
        configs = [json.dumps(c, sort_keys=True) for c in self.platforms.values()]
        if configs and all(c == configs[0] for c in configs):
            return next(iter(self.platforms.values()))
        return None


def _platform_key(p):
    key = f"{p.get('os', '')}/{p.get('architecture', '')}"
    if p.get("variant"):
        key += f"/{p['variant']}"
    return key


def _entry(config, image="", where="the image"):
    conf = config.get("config") or {}
    if not isinstance(conf, dict):
        raise ShimError(OP, image, f"{where} has an image config whose `config` is not an object",
                        "rebuild the image (its config is malformed)")
    entry = {}
    for key in ("Entrypoint", "Cmd"):
        words = conf.get(key) or None
        if words is not None and (not isinstance(words, list) or not all(isinstance(w, str) for w in words)):
            raise ShimError(OP, image, f"{where} has an image config whose {key} is not a list of strings",
                            "rebuild the image (its config is malformed)")
        entry[key] = words
    return entry


def _json(data, what, image, where):
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ShimError(OP, image, f"{where} sent a {what} that is not JSON ({err.__class__.__name__})",
                        "check that the address is a registry (or the file an OCI image)") from None
    if not isinstance(doc, dict):
        raise ShimError(OP, image, f"{where} sent a {what} that is not a JSON object",
                        "check that the address is a registry (or the file an OCI image)")
    return doc


def walk(store, data, image, where):
    """{platform: entry} from manifest bytes `data`, fetching children from `store`."""
    doc = _json(data, "manifest", image, where)
    if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
        platforms = {}
        descriptors = doc.get("manifests") or []
        if not isinstance(descriptors, list) or not all(
                isinstance(d, dict) and isinstance(d.get("digest"), str) and isinstance(d.get("platform") or {}, dict)
                and isinstance(d.get("annotations") or {}, dict) for d in descriptors):
            raise ShimError(OP, image, f"{where} sent an image index whose manifests are not descriptors",
                            "check that the address is a registry (or the file an OCI image)")
        for desc in descriptors:
            plat = desc.get("platform") or {}
            annotations = desc.get("annotations") or {}
            if plat.get("os") in (None, "unknown") or "vnd.docker.reference.type" in annotations:
                continue  # attestations and other non-runnable entries
            child = store.manifest(desc["digest"])
            for entry in walk(store, child, image, where).values():
                platforms.setdefault(_platform_key(plat), entry)  # the index's platform, variant included
        if not platforms:
            raise ShimError(OP, image, f"{where} has an image index with no runnable platform",
                            "push the image for linux/amd64 or linux/arm64")
        return platforms
    config_desc = doc.get("config")
    if not isinstance(config_desc, dict) or not isinstance(config_desc.get("digest"), str):
        raise ShimError(OP, image, f"{where} sent a manifest without a config",
                        "push an OCI or Docker v2 schema 2 image (schema 1 is not supported)")
    config = _json(store.blob(config_desc["digest"]), "config", image, where)
    return {_platform_key(config) if config.get("architecture") else "?": _entry(config, image, where)}


# -- stores: where manifests and blobs come from --------------------------------------------


class LayoutStore:
    """An OCI image layout, as a directory or a tar archive (`oci-archive`)."""

    def __init__(self, path, image):
        self.path, self.image = path, image
        self._tar = None
        if os.path.isfile(path):
            try:
                self._tar = tarfile.open(path)
                # Archives name members "index.json" or "./index.json" depending on the writer.
                self._members = {m.name.lstrip("./") if m.name.startswith("./") else m.name: m
                                 for m in self._tar.getmembers()}
            except (OSError, tarfile.TarError) as err:
                raise ShimError(OP, image, f"cannot open OCI archive {path} ({err})",
                                "give an archive written by `skopeo copy … oci-archive:FILE`") from None
        elif not os.path.isdir(path):
            raise ShimError(OP, image, f"no OCI layout at {path}", "check the path after oci: / oci-archive:")

    def read(self, name):
        try:
            if self._tar is not None:
                member = self._tar.extractfile(self._members[name])
                if member is None:
                    raise KeyError(name)
                return member.read(MAX_DOCUMENT + 1)
            with open(os.path.join(self.path, name), "rb") as fh:
                return fh.read(MAX_DOCUMENT + 1)
        except (KeyError, OSError):
            raise ShimError(OP, self.image, f"{self.path} has no {name}",
                            "the OCI layout is incomplete; copy the image again") from None

    def blob(self, digest):
        algo, _, hexpart = digest.partition(":")
        return self.read(f"blobs/{algo}/{hexpart}")

    manifest = blob

    def root(self, ref_name):
        """(bytes, digest) of the manifest or index `ref_name` names in index.json (or the only one)."""
        index = _json(self.read("index.json"), "index.json", self.image, self.path)
        descs = index.get("manifests") or []
        if ref_name:
            descs = [d for d in descs
                     if (d.get("annotations") or {}).get("org.opencontainers.image.ref.name") == ref_name]
        if len(descs) != 1:
            names = [(d.get("annotations") or {}).get("org.opencontainers.image.ref.name") for d in
                     index.get("manifests") or []]
            raise ShimError(OP, self.image, f"{self.path} has {len(descs)} images named {ref_name or '(any)'}"
                            f" (names: {', '.join(str(n) for n in names) or 'none'})",
                            "append :NAME to the location to choose one")
        return self.blob(descs[0]["digest"]), descs[0]["digest"]


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry the registry's Authorization to another host.

    Registries redirect blob downloads to storage (S3, a CDN) that must not see the token,
    and that rejects a request carrying one next to its own signed URL; docker and
    containers/image drop it the same way.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.headers.pop("Authorization", None)
            new.unredirected_hdrs.pop("Authorization", None)
        return new


class RegistryClient:
    """The distribution API for one repository: anonymous, bearer-token and basic auth."""

    def __init__(self, ref, image, auth_files, ca_file=None, insecure=False, timeout=30.0, deadline=None):
        self.ref, self.image = ref, image
        self.host = ref.api_host
        self.scheme = "http" if insecure else "https"
        self.auth_files = auth_files
        self.timeout, self.deadline = timeout, deadline
        self.context = None
        if not insecure:
            self.context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self._authorization = None
        self._creds = None
        self._creds_loaded = False

    def _credentials(self):
        if not self._creds_loaded:
            self._creds = auth.find(self.ref.host, self.ref.repository, self.auth_files)
            self._creds_loaded = True
        return self._creds

    def _budget(self):
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ShimError(OP, self.image, f"time budget spent before asking registry {self.host}",
                            "raise the timeout, or pin the image by digest so the lookup is cached")
        return min(self.timeout, left)

    def _open(self, url, headers, what):
        request = urllib.request.Request(url, headers=headers)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context), _SameHostAuth)
        try:
            resp = opener.open(request, timeout=self._budget())
            return resp.status, resp.headers, resp.read(MAX_DOCUMENT + 1)
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read(4096)
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
                raise ShimError(OP, self.image, f"registry {self.host}'s TLS certificate is not trusted "
                                f"({getattr(reason, 'verify_message', reason)}) for {what}",
                                "pass --ca-file CA.pem with the registry's CA, or add it to the system trust "
                                "store") from None
            if isinstance(reason, ssl.SSLError):
                raise ShimError(OP, self.image, f"TLS with registry {self.host} failed ({reason.reason or reason})",
                                f"if {self.host} speaks plain HTTP, pass --insecure-registry {self.ref.host}") from None
            raise ShimError(OP, self.image, f"cannot reach registry {self.host} ({reason})",
                            "check the registry address, the network and HTTPS_PROXY/NO_PROXY") from None
        except (TimeoutError, OSError) as err:
            raise ShimError(OP, self.image, f"registry {self.host} did not answer {what} in time ({err})",
                            "check the network, or raise --timeout") from None

    def _token(self, challenge, what):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise ShimError(OP, self.image, f"registry {self.host} sent a Bearer challenge without a realm",
                            "the registry is misconfigured; ask its operator")
        params.setdefault("scope", f"repository:{self.ref.repository}:pull")
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(params)
        headers = {}
        creds = self._credentials()
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        status, _, body = self._open(url, headers, f"a token for {what}")
        if status != 200:
            raise self._status_error(status, f"GET token from {urllib.parse.urlsplit(realm).netloc}", creds)
        doc = _json(body, "token response", self.image, f"registry {self.host}'s token service")
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise ShimError(OP, self.image, f"registry {self.host}'s token service answered without a token",
                            "the registry is misconfigured; ask its operator")
        return f"Bearer {token}"

    def get(self, path, accept=None):
        """GET /v2/<repo>/<path>: (bytes, headers), authenticating when challenged."""
        url = f"{self.scheme}://{self.host}/v2/{self.ref.repository}/{path}"
        what = f"GET /v2/{self.ref.repository}/{path}"
        headers = {"Accept": accept} if accept else {}
        for attempt in range(2):
            if self._authorization:
                headers["Authorization"] = self._authorization
            status, resp_headers, body = self._open(url, headers, what)
            if status == 401 and attempt == 0:
                challenge = resp_headers.get("WWW-Authenticate", "")
                scheme = challenge.split(" ", 1)[0].lower()
                if scheme == "bearer":
                    self._authorization = self._token(challenge, what)
                    continue
                if scheme == "basic" and self._credentials() is not None:
                    self._authorization = self._credentials().basic_header()
                    continue
            if status != 200:
                raise self._status_error(status, what, self._credentials() if self._authorization else None)
            if len(body) > MAX_DOCUMENT:
                raise ShimError(OP, self.image, f"registry {self.host} sent more than {MAX_DOCUMENT} bytes for {what}",
                                "this is not an image manifest or config; check the reference")
            return body, resp_headers
        raise AssertionError("unreachable")

    def _status_error(self, status, what, creds):
        reason = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}.get(status, "")
        cause = f"registry {self.host} answered HTTP {status}{' ' + reason if reason else ''} to {what}"
        if status in (401, 403):
            if creds is not None:
                fix = (f"the credentials for {self.ref.host} from {creds.source} were refused; log in again "
                       f"(podman login {self.ref.host}) or fix the imagePullSecret")
            else:
                fix = (f"log in (podman login {self.ref.host}, or set REGISTRY_AUTH_FILE), or pass "
                       "--pull-secret FILE with the pod's imagePullSecret")
        elif status == 404:
            fix = "check the repository and tag (a private image can also look missing without credentials)"
        elif status == 429:
            fix = "the registry rate-limits; log in, retry later, or use a mirror"
        elif status >= 500:
            fix = "the registry failed; retry later or check the registry's logs"
        else:
            fix = "check the registry address and the reference"
        return ShimError(OP, self.image, cause, fix)

    def manifest(self, reference):
        body, _ = self.get(f"manifests/{reference}", ACCEPT)
        return body

    def blob(self, digest):
        body, _ = self.get(f"blobs/{digest}")
        return body


# -- the cache ---------------------------------------------------------------------------


def default_cache_dir(env=None):
    env = os.environ if env is None else env
    if env.get("SHIM_LOOKUP_CACHE"):
        return env["SHIM_LOOKUP_CACHE"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "shim", "lookup")


class DigestCache:
    """digest -> {platform: entry}; a missing or unreadable directory only disables caching."""

    def __init__(self, directory):
        self.directory = directory

    def _path(self, digest):
        return os.path.join(self.directory, digest.replace(":", "-") + ".json") if self.directory else None

    def get(self, digest):
        path = self._path(digest)
        if not path:
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
            return doc["platforms"] if isinstance(doc.get("platforms"), dict) else None
        except (OSError, ValueError, KeyError, AttributeError):
            return None

    def put(self, digest, platforms):
        path = self._path(digest)
        if not path:
            return
        from shim.util.fsutil import write_all, write_atomically  # the one atomic write

        data = json.dumps({"digest": digest, "platforms": platforms}, sort_keys=True).encode()
        try:
            os.makedirs(self.directory, exist_ok=True)
            write_atomically(path, lambda fd: write_all(fd, data))
        except OSError:
            pass  # a cache that cannot be written costs a lookup next time, nothing more


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the lookup --------------------------------------------------------------------------


@dataclass
class Lookup:
    """Resolve images to ImageInfo; one instance per CLI run or webhook process."""
    sources: dict = field(default_factory=dict)  # image as written -> location
    auth_files: list = field(default_factory=list)  # checked before the default files
    ca_file: str = None
    insecure: tuple = ()  # registry hosts spoken to over plain HTTP
    timeout: float = 30.0
    cache_dir: str = None
    env: dict = None
    memo: dict = field(default_factory=dict)

    def __post_init__(self):
        self.env = dict(os.environ) if self.env is None else self.env
        self.cache = DigestCache(self.cache_dir if self.cache_dir is not None else default_cache_dir(self.env))

    def lookup(self, image, deadline=None):
        if image not in self.memo:
            self.memo[image] = self._lookup(image, deadline)
        return self.memo[image]

    def location(self, image):
        if image in self.sources:
            return self.sources[image]
        ref = parse(image)
        if ref.host == "localhost":
            return f"containers-storage:{image}"
        return f"docker://{image}"

    def _lookup(self, image, deadline):
        location = self.location(image)
        transport, _, rest = location.partition(":")
        if transport in ("oci", "oci-archive"):
            path, _, name = rest.partition(":")
            store = LayoutStore(path, image)
            data, digest = store.root(name)
            return ImageInfo(image, self._cached(digest, lambda: walk(store, data, image, location)), digest,
                             location)
        if transport == "containers-storage":
            return self._from_storage(image, rest)
        if transport == "docker":
            return self._from_registry(image, rest.lstrip("/"), deadline)
        raise ShimError(OP, image, f"unknown location {show(location)}",
                        "use oci:DIR, oci-archive:FILE, containers-storage:REF or docker://REF")

    def _cached(self, digest, compute):
        platforms = self.cache.get(digest)
        if platforms is None:
            platforms = compute()
            self.cache.put(digest, platforms)
        return platforms

    def _from_registry(self, image, text, deadline):
        ref = parse(text)
        insecure = ref.host in self.insecure or ref.api_host in self.insecure
        files = list(self.auth_files) + auth.default_files(self.env)
        client = RegistryClient(ref, image, files, self.ca_file, insecure, self.timeout, deadline)
        where = f"registry {ref.api_host}"
        if ref.digest:
            cached = self.cache.get(ref.digest)
            if cached is not None:
                return ImageInfo(image, cached, ref.digest, f"docker://{ref}", True)
        data = client.manifest(ref.version)
        digest = _digest(data)
        if ref.digest and ref.digest != digest:
            raise ShimError(OP, image, f"{where} sent a manifest whose digest is {digest}, not {ref.digest}",
                            "the registry or a proxy altered the manifest; do not trust it")
        platforms = self._cached(digest, lambda: walk(client, data, image, where))
        return ImageInfo(image, platforms, digest, f"docker://{ref}", True)

    def _from_storage(self, image, name):
        try:
            proc = subprocess.run(["skopeo", "inspect", "--config", f"containers-storage:{name}"],
                                  capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise ShimError(OP, image, "skopeo is not installed (needed to read containers-storage)",
                            "install skopeo, or give --image-source IMAGE=oci-archive:FILE") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ShimError(OP, image, f"not in local containers-storage ({last})",
                            "pull or build it (podman images lists them), or give --image-source IMAGE=LOCATION")
        config = _json(proc.stdout.encode(), "config", image, "containers-storage")
        where = f"containers-storage:{name}"
        return ImageInfo(image, {_platform_key(config): _entry(config, image, where)}, "", where)
