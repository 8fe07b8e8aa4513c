"""`shim k8s webhook`: a mutating admission webhook that injects shim into pods.

    shim k8s webhook --listen :8443 --tls-cert tls.crt --tls-key tls.key --tools-image REF

Kubernetes POSTs an AdmissionReview v1 for each pod the
MutatingWebhookConfiguration's namespace/object selectors send (opt-in by
label, as Vault's injector does); the answer carries a JSONPatch doing what
`shim k8s inject` does.  Pods already injected, or annotated
`shim.dev/inject: "false"`, are admitted unchanged.  A pod that cannot be
injected (its image lookup failed, the time budget ran out) is admitted
unchanged with a warning (`--on-error allow`, pair with failurePolicy: Ignore)
or denied (`--on-error deny`, pair with failurePolicy: Fail).

TLS: the certificate and key are re-read when either file changes (a renewed
cert-manager Secret), checked on each new connection.  GET /healthz answers
`ok`.  Logs: one JSON object per line on stderr.  Stdlib http.server: a webhook
serves a handful of small requests per pod creation, and this keeps the tools
image's dependencies to the YAML library.
"""

import base64
import copy
import http.server
import json
import os
import signal
import socketserver
import ssl
import sys
import threading
import time

from shim.errors import ShimError

from .inject import ANNOTATION, Injector, Record
from .manifests import describe

API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 3 << 20  # the API server's own request limit is 3 MiB
PATCHED_PATHS = (("metadata", "annotations"), ("spec", "initContainers"), ("spec", "containers"),
                 ("spec", "volumes"), ("spec", "nodeSelector"))


def log(level, msg, **fields):
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
              "level": level, "msg": msg, **fields}
    try:
        sys.stderr.write(json.dumps(record, sort_keys=False) + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def json_patch(before, after):
    """`add` operations (which replace existing members, RFC 6902 §4.1) for each changed part."""
    ops = []
    for path in PATCHED_PATHS:
        old, new = before, after
        for key in path:
            old = old.get(key) if isinstance(old, dict) else None
            new = new.get(key) if isinstance(new, dict) else None
        if old == new:
            continue
        pointer = "/" + "/".join(path)
        if new is None:
            ops.append({"op": "remove", "path": pointer})
        else:
            ops.append({"op": "add", "path": pointer, "value": new})
    return ops


class BadReview(Exception):
    """The request is not an AdmissionReview v1 we can answer (HTTP 400)."""


def parse_review(body):
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadReview(f"body is not JSON ({err.__class__.__name__})") from None
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise BadReview("not an AdmissionReview (kind must be AdmissionReview)")
    if review.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion {review.get('apiVersion')!r} is not {API_VERSION}; list only v1 in "
                        "admissionReviewVersions")
    request = review.get("request")
    if not isinstance(request, dict) or not request.get("uid"):
        raise BadReview("AdmissionReview has no request.uid")
    return request


class Mutator:
    """AdmissionReview request -> response; no HTTP in here, so tests call it directly."""

    def __init__(self, settings, lookup, budget=8.0, on_error="allow", clock=time.monotonic):
        self.settings, self.lookup, self.budget, self.on_error, self.clock = settings, lookup, budget, on_error, clock

    def review(self, request):
        uid = request["uid"]
        response = {"uid": uid, "allowed": True}
        obj = request.get("object")
        kind = (request.get("kind") or {}).get("kind")
        fields = {"uid": uid, "namespace": request.get("namespace", ""), "operation": request.get("operation", "")}
        if kind != "Pod" or not isinstance(obj, dict) or not isinstance(obj.get("spec"), dict):
            log("info", "admitted: not a pod", kind=kind, **fields)
            return response
        obj.setdefault("kind", "Pod")
        fields["pod"] = describe(obj).split(" ", 1)[1]
        pod = copy.deepcopy(obj)
        injector = Injector(self.settings, lookup=self.lookup, deadline=self.clock() + self.budget)
        try:
            changed = injector.inject(pod)
        except ShimError as err:
            message = f"shim: {err.message()}"
            log("error", "injection failed", error=message, on_error=self.on_error, **fields)
            if self.on_error == "deny":
                return {"uid": uid, "allowed": False, "status": {"code": 400, "message": message}}
            response["warnings"] = [message[:1000]]
            return response
        for note in injector.notes:
            log("info", "note", note=note, **fields)
        if not changed:
            log("info", "admitted unchanged", **fields)
            return response
        patch = json_patch(obj, pod)
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        record = Record.parse(pod["metadata"]["annotations"][ANNOTATION])
        log("info", "injected", containers=sorted(record.containers), **fields)
        return response


class ReloadingTLS:
    """An SSLContext rebuilt when the certificate or key file changes."""

    def __init__(self, cert, key):
        self.cert, self.key = cert, key
        self._lock = threading.Lock()
        self._stamp = None
        self._context = None
        self.context()  # fail at start, not on the first request

    def _files_stamp(self):
        try:
            return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in map(os.stat, (self.cert, self.key)))
        except OSError as err:
            raise ShimError("load TLS", err.filename or self.cert, (err.strerror or str(err)).lower(),
                            "mount the serving certificate Secret (tls.crt, tls.key)") from None

    def context(self):
        stamp = self._files_stamp()
        with self._lock:
            if stamp != self._stamp:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                try:
                    ctx.load_cert_chain(self.cert, self.key)
                except (ssl.SSLError, OSError) as err:
                    if self._context is None:
                        raise ShimError("load TLS", self.cert, f"certificate or key unusable ({err})",
                                        "give a PEM certificate and its matching key") from None
                    log("warn", "new TLS files unusable; serving the previous certificate", error=str(err))
                    return self._context  # half-written renewal: keep serving, retry next connection
                self._context, self._stamp = ctx, stamp
                log("info", "TLS certificate loaded", cert=self.cert)
            return self._context


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, mutator, tls):
        self.mutator, self.tls = mutator, tls
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # Handshake in the handler thread (do_handshake_on_connect), so one slow client cannot stall accept().
        return self.tls.context().wrap_socket(sock, server_side=True), addr


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "shim-webhook"
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *args):  # structured logs instead of http.server's lines
        pass

    def _send(self, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] in ("/healthz", "/readyz", "/livez"):
            self._send(200, "ok\n", "text/plain")
        else:
            self._send(404, "not found; POST AdmissionReviews to /mutate, GET /healthz\n", "text/plain")

    def do_POST(self):
        started = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self._bad(f"Content-Length {length} outside 1..{MAX_BODY}")
            return
        body = self.rfile.read(length)
        try:
            request = parse_review(body)
        except BadReview as err:
            self._bad(str(err))
            return
        response = self.server.mutator.review(request)
        self._send(200, json.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}))
        log("debug", "answered", uid=request["uid"], ms=round((time.monotonic() - started) * 1000, 1))

    def _bad(self, cause):
        message = f"shim: review request from {self.client_address[0]}: {cause}; send an AdmissionReview v1"
        log("warn", "bad request", error=message)
        self._send(400, json.dumps({"error": message}))


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ShimError("parse", "--listen", f"{text!r} is not HOST:PORT", "write e.g. :8443 or 127.0.0.1:8443")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(args):
    from shimtools.cli import make_lookup, settings_from

    if not args.tls_cert or not args.tls_key:
        raise ShimError("parse", "shim k8s webhook", "--tls-cert and --tls-key are required (the API server "
                        "only calls webhooks over HTTPS)", "mount the serving certificate and pass both")
    mutator = Mutator(settings_from(args), make_lookup(args), args.request_timeout, args.on_error)
    tls = ReloadingTLS(args.tls_cert, args.tls_key)
    address = parse_listen(args.listen)
    try:
        server = Server(address, mutator, tls)
    except OSError as err:
        raise ShimError("listen", args.listen, (err.strerror or str(err)).lower(),
                        "choose a free port") from None
    log("info", "listening", address=f"{address[0]}:{server.server_address[1]}", tools_image=args.tools_image,
        mode=args.mode)
    # As PID 1 of its container, TERM would be ignored without a handler: finish and exit instead.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    finally:
        server.server_close()
    log("info", "stopped")
    return 0
