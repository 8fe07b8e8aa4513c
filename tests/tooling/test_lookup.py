"""Image lookup: OCI layout and archive, digest cache, references, credentials, registry failures.

The registry cases here use a loopback stub (http.server) for what Debian's
docker-registry cannot be made to do (answer 500, send garbage) and, to keep this
tier fast, for a token service.  The real registry, with htpasswd basic auth and
with bearer tokens, and a two-arch index, is exercised in
tests/tools/test_shimtools_registry.py.
"""

import base64
import http.server
import json
import tarfile
import threading

import pytest

from shim.errors import ShimError
from shimtools.registry import auth
from shimtools.registry.oci import Lookup
from shimtools.registry.reference import parse
from tooling_support import write_layout

IMG = {"Entrypoint": ["/entry"], "Cmd": ["run"]}


def test_reference_normalisation():
    assert str(parse("nginx")) == "docker.io/library/nginx:latest"
    assert parse("nginx").api_host == "registry-1.docker.io"
    ref = parse("127.0.0.1:5000/team/app:1.0@sha256:" + "a" * 64)
    assert (ref.host, ref.repository, ref.tag, ref.version) == \
        ("127.0.0.1:5000", "team/app", "1.0", "sha256:" + "a" * 64)
    assert parse("localhost/app").host == "localhost"
    assert parse("reg.example/a/b:2").pinned("sha256:" + "b" * 64) == "reg.example/a/b@sha256:" + "b" * 64
    with pytest.raises(ShimError, match="bad repository name"):
        parse("Reg/UPPER")


def test_oci_layout_index_and_archive(tmp_path):
    digest = write_layout(tmp_path / "l", {"amd64": IMG, "arm64": {"Entrypoint": ["/arm"]}}, name="v1")
    lookup = Lookup(sources={"a": f"oci:{tmp_path / 'l'}:v1"}, cache_dir="")
    info = lookup.lookup("a")
    assert info.digest == digest and not info.pinnable
    assert info.platforms == {"linux/amd64": {"Entrypoint": ["/entry"], "Cmd": ["run"]},
                              "linux/arm64": {"Entrypoint": ["/arm"], "Cmd": None}}
    with tarfile.open(tmp_path / "l.tar", "w") as tar:
        tar.add(tmp_path / "l", arcname=".")
    info2 = Lookup(sources={"a": f"oci-archive:{tmp_path / 'l.tar'}"}, cache_dir="").lookup("a")
    assert info2.platforms == info.platforms


def test_single_manifest_layout(tmp_path):
    write_layout(tmp_path / "s", {"arm64": IMG}, single=True)
    assert Lookup(sources={"a": f"oci:{tmp_path / 's'}"}, cache_dir="").lookup("a").platforms == {
        "linux/arm64": {"Entrypoint": ["/entry"], "Cmd": ["run"]}}


def test_digest_cache_answers_without_the_blobs(tmp_path):
    write_layout(tmp_path / "l", {"amd64": IMG})
    cache = tmp_path / "cache"
    first = Lookup(sources={"a": f"oci:{tmp_path / 'l'}"}, cache_dir=str(cache)).lookup("a")
    index = json.loads((tmp_path / "l" / "index.json").read_text())["manifests"][0]["digest"]
    for blob in (tmp_path / "l" / "blobs" / "sha256").iterdir():
        if blob.name != index.split(":")[1]:
            blob.unlink()  # manifests and configs gone: only the cache can answer
    again = Lookup(sources={"a": f"oci:{tmp_path / 'l'}"}, cache_dir=str(cache)).lookup("a")
    assert again.platforms == first.platforms
    assert [p.name for p in cache.iterdir()] == [index.replace(":", "-") + ".json"]
    with pytest.raises(ShimError, match="has no blobs/sha256/"):
        Lookup(sources={"a": f"oci:{tmp_path / 'l'}"}, cache_dir="").lookup("a")


def test_broken_layouts_are_one_line_errors(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "index.json").write_text("not json")
    with pytest.raises(ShimError) as err:
        Lookup(sources={"a": f"oci:{tmp_path / 'x'}"}, cache_dir="").lookup("a")
    assert "not JSON" in err.value.message() and "\n" not in err.value.message()
    with pytest.raises(ShimError, match="no OCI layout at"):
        Lookup(sources={"a": f"oci:{tmp_path / 'missing'}"}, cache_dir="").lookup("a")
    write_layout(tmp_path / "two", {"amd64": IMG}, name="one")
    with pytest.raises(ShimError, match="has 0 images named nope"):
        Lookup(sources={"a": f"oci:{tmp_path / 'two'}:nope"}, cache_dir="").lookup("a")


# -- credentials ---------------------------------------------------------------------------------


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_docker_config_secret_and_legacy(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"reg.example": {"auth": _b64("u1:p1")},
                                         "reg.example/team": {"auth": _b64("u2:p2")},
                                         "https://index.docker.io/v1/": {"auth": _b64("hub:pw")}}}))
    assert auth.find("reg.example", "other/app", [str(cfg)]).username == "u1"
    assert auth.find("reg.example", "team/app", [str(cfg)]).username == "u2"  # most specific key
    assert auth.find("docker.io", "library/nginx", [str(cfg)]).username == "hub"
    assert auth.find("elsewhere.example", "x", [str(cfg)]) is None
    secret = tmp_path / "pull-secret.yaml"
    inner = json.dumps({"auths": {"reg.example": {"username": "sa", "password": "s3cret"}}})
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\n"
                      f"data:\n  .dockerconfigjson: {_b64(inner)}\n")
    creds = auth.find("reg.example", "x", [str(secret), str(cfg)])
    assert (creds.username, creds.password) == ("sa", "s3cret") and "s3cret" not in repr(creds)
    legacy = tmp_path / "dockercfg"
    legacy.write_text(json.dumps({"https://reg.example": {"auth": _b64("old:pw")}}))
    assert auth.find("reg.example", "x", [str(legacy)]).username == "old"


def test_default_credential_files_order(tmp_path):
    env = {"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/u", "HOME": "/home/u"}
    assert auth.default_files(env) == ["/a.json", "/run/u/containers/auth.json", "/home/u/.docker/config.json"]
    assert auth.default_files({"DOCKER_CONFIG": "/d", "HOME": "/h"}) == ["/d/config.json"]


# -- registry behaviours no real server here emulates: a loopback stub --------------------------


class Stub(http.server.BaseHTTPRequestHandler):
    routes = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        self.server.seen.append((path, self.headers.get("Authorization")))
        status, headers, body = self.server.routes.get(path, (404, {}, b'{"errors":[]}'))
        if callable(body):
            status, headers, body = body(self, query)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.routes, server.seen = {}, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.host = f"127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


def lookup_stub(stub, image, **kw):
    return Lookup(insecure=(stub.host,), cache_dir="", env={"HOME": "/nonexistent"}, **kw).lookup(image)


def test_registry_500_and_garbage_name_image_registry_status_and_fix(stub):
    stub.routes["/v2/app/manifests/1"] = (500, {}, b"oops")
    with pytest.raises(ShimError) as err:
        lookup_stub(stub, f"{stub.host}/app:1")
    assert err.value.message() == (
        f"look up image {stub.host}/app:1: registry {stub.host} answered HTTP 500 to GET /v2/app/manifests/1; "
        "the registry failed; retry later or check the registry's logs")
    stub.routes["/v2/app/manifests/1"] = (200, {}, b"<html>login page</html>")
    with pytest.raises(ShimError, match="sent a manifest that is not JSON"):
        lookup_stub(stub, f"{stub.host}/app:1")


def test_bearer_token_flow_with_pull_secret_credentials(stub, tmp_path):
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": IMG}).encode()
    import hashlib

    cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": cdigest, "size": len(config)}, "layers": []}).encode()
    challenge = {"WWW-Authenticate": f'Bearer realm="http://{stub.host}/token",service="reg",scope="repository:team/app:pull"'}

    def guarded(body):
        def handler(req, query):
            if req.headers.get("Authorization") != "Bearer T0K3N":
                return 401, challenge, b'{"errors":[{"code":"UNAUTHORIZED"}]}'
            return 200, {}, body
        return handler

    def token(req, query):
        if req.headers.get("Authorization") != "Basic " + _b64("robot:pw"):
            return 401, {}, b"{}"
        assert "scope=repository%3Ateam%2Fapp%3Apull" in query and "service=reg" in query
        return 200, {}, b'{"token": "T0K3N"}'

    stub.routes.update({"/v2/team/app/manifests/1": (0, {}, guarded(manifest)),
                        f"/v2/team/app/blobs/{cdigest}": (0, {}, guarded(config)),
                        "/token": (0, {}, token)})
    with pytest.raises(ShimError) as err:
        lookup_stub(stub, f"{stub.host}/team/app:1")
    assert "answered HTTP 401 Unauthorized to GET token from" in err.value.message()
    assert "podman login" in err.value.message() and "--pull-secret" in err.value.message()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"auths": {stub.host: {"auth": _b64("robot:pw")}}}))
    info = lookup_stub(stub, f"{stub.host}/team/app:1", auth_files=[str(secret)])
    assert info.platforms == {"linux/amd64": {"Entrypoint": ["/entry"], "Cmd": ["run"]}}
    assert info.digest == "sha256:" + hashlib.sha256(manifest).hexdigest() and info.pinnable
    assert all("pw" not in (a or "") or a.startswith("Basic") for _, a in stub.seen)


def test_unreachable_registry_and_plain_http_hint(stub):
    with pytest.raises(ShimError) as err:
        Lookup(cache_dir="", env={"HOME": "/nonexistent"}).lookup(f"{stub.host}/app:1")  # HTTPS to an HTTP stub
    assert f"--insecure-registry {stub.host}" in err.value.message()
    with pytest.raises(ShimError, match="cannot reach registry 127.0.0.1:9"):
        Lookup(insecure=("127.0.0.1:9",), cache_dir="", env={}).lookup("127.0.0.1:9/app:1")


def test_digest_mismatch_is_refused(stub):
    stub.routes["/v2/app/manifests/sha256:" + "0" * 64] = (200, {}, b'{"schemaVersion": 2}')
    with pytest.raises(ShimError, match="do not trust it"):
        lookup_stub(stub, f"{stub.host}/app@sha256:" + "0" * 64)


def test_a_redirect_to_another_host_does_not_carry_the_token(stub):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    other.routes, other.seen = {}, []
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        import hashlib

        config = json.dumps({"architecture": "arm64", "os": "linux", "config": IMG}).encode()
        cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "config": {"digest": cdigest}, "layers": []}).encode()
        stub.routes["/v2/app/manifests/1"] = (200, {}, manifest)
        stub.routes[f"/v2/app/blobs/{cdigest}"] = (
            307, {"Location": f"http://127.0.0.1:{other.server_address[1]}/storage/blob"}, b"")
        other.routes["/storage/blob"] = (200, {}, config)
        secret = {"auths": {stub.host: {"auth": _b64("robot:pw")}}}
        stub.routes["/v2/app/manifests/1"] = (0, {}, lambda req, q: (
            (200, {}, manifest) if req.headers.get("Authorization") else
            (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")))
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
            json.dump(secret, fh)
            fh.flush()
            info = lookup_stub(stub, f"{stub.host}/app:1", auth_files=[fh.name])
        assert info.platforms["linux/arm64"]["Entrypoint"] == ["/entry"]
        assert other.seen == [("/storage/blob", None)]  # the storage host never saw the credentials
        assert (f"/v2/app/blobs/{cdigest}", "Basic " + _b64("robot:pw")) in stub.seen
    finally:
        other.shutdown()


@pytest.mark.parametrize("ref, cause", [
    ("x:é", "bad tag"),
    ("a b.example/x:1", "bad registry host"),
    ("é.example/x:1", "bad registry host"),
])
def test_references_outside_the_grammar(ref, cause):
    with pytest.raises(ShimError, match=cause) as err:
        parse(ref)
    assert "\n" not in err.value.message()


@pytest.mark.parametrize("config", [{"Entrypoint": "/entry run"}, {"Cmd": [1, True]}, {"Entrypoint": {"a": "b"}}])
def test_image_configs_of_the_wrong_shape_are_one_line(tmp_path, config):
    write_layout(tmp_path / "bad", {"amd64": config})
    lookup = Lookup(sources={"reg.example/bad:1": f"oci:{tmp_path / 'bad'}"}, cache_dir="")
    with pytest.raises(ShimError, match="is not a list of strings") as err:
        lookup.lookup("reg.example/bad:1")
    assert "\n" not in err.value.message() and "reg.example/bad:1" in err.value.message()


def test_index_whose_manifests_are_not_descriptors(tmp_path):
    write_layout(tmp_path / "l", {"amd64": IMG})
    index = json.loads((tmp_path / "l" / "index.json").read_text())
    top = index["manifests"][0]["digest"].split(":")[1]
    (tmp_path / "l" / "blobs" / "sha256" / top).write_text(json.dumps({"schemaVersion": 2, "manifests": [5]}))
    lookup = Lookup(sources={"reg.example/l:1": f"oci:{tmp_path / 'l'}"}, cache_dir="")
    with pytest.raises(ShimError, match="not descriptors"):
        lookup.lookup("reg.example/l:1")


@pytest.mark.parametrize("text, cause", [
    ('{"auths": "x"}', "auths must map registries"),
    ('{"auths": {"reg.example": {"username": 5}}}', "username or password is not a string"),
    ('{"credHelpers": {"reg.example": "../../bin/sh"}}', "helper names"),
    ('{"credsStore": ["x"]}', "credsStore must be a helper name"),
    ("kind: Secret\ndata: x\n", "data and stringData must map keys to strings"),
    ("kind: Secret\nstringData: {.dockerconfigjson: 5}\n", "data and stringData"),
    ("x: 2026-13-45\n", "neither JSON nor YAML"),
])
def test_credential_files_of_the_wrong_shape_are_one_line(tmp_path, text, cause):
    path = tmp_path / "auth.json"
    path.write_text(text)
    with pytest.raises(ShimError, match=cause.replace("[", r"\[")) as err:
        auth.find("reg.example", "app", [str(path)])
    assert "\n" not in err.value.message()
