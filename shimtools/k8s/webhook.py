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
image's dependencies to the YAML library (an ASGI server would add several).

Connections never serialise: the TLS handshake runs in the connection's own
thread, and a client must finish its handshake and each request (headers and
body) within --client-timeout, or the connection is closed; an idle or slow
client costs one thread until then, never another client's answer.

Whatever the object holds — fields of the wrong type, JSON nested deeper than
any pod — the answer is an AdmissionReview response following --on-error,
never a dropped connection.
"""

import base64
import copy
import heapq
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time

from shim.errors import ShimError

from ..messages import show
from .inject import ANNOTATION, Injector, Record
from .manifests import describe

API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 3 << 20  # the API server's own request limit is 3 MiB
# No pod nests deeper than a few dozen levels (affinity terms are the deepest, ~10); a deeper
# object cannot be a valid pod, and Python's recursive JSON, copy and compare would overflow on it.
MAX_DEPTH = 100
CLIENT_TIMEOUT = 10.0  # default --client-timeout: TLS handshake, and each request's headers + body
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
    """`add` operations (which replace existing members, RFC 6902 §4.1) for each changed part.

    Written here rather than with a diff library (python-json-patch's make_patch): inject
    changes five known members, and one `add` per changed member keeps the patch short and
    readable in the API server's audit log, where a generic diff emits an op per list item.
    """
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


def depth(value):
    """How deeply `value` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, level + 1)
        if level + 1 > MAX_DEPTH:
            return deepest  # deep enough to refuse: no need to walk the rest
        stack.extend((child, level + 1) for child in node)
    return deepest


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def cut_deep(body):
    """`body` with every array/object nested deeper than MAX_DEPTH replaced by null.

    Only called when json.loads overflowed: the rest of the review (its uid above
    all) stays readable, so the answer can still follow --on-error.  Strings are
    skipped whole, so brackets inside them do not count.
    """
    out, level, start, copied = [], 0, None, 0
    for m in _JSON_TOKEN.finditer(body):
        token = m.group()
        if token[:1] == b'"':
            continue
        if token in (b"[", b"{"):
            level += 1
            if level == MAX_DEPTH + 1:
                start = m.start()
        else:
            if level == MAX_DEPTH + 1 and start is not None:
                out += [body[copied:start], b"null"]
                copied, start = m.end(), None
            level -= 1
    out.append(body[copied:])
    return b"".join(out)


def parse_review(body):
    """(request, too deep?) of an AdmissionReview: a dict with a uid; raises BadReview when there is none."""
    too_deep = False
    try:
        review = json.loads(body)
    except RecursionError:
        too_deep = True
        try:
            review = json.loads(cut_deep(body))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise BadReview(f"body is not JSON ({err.__class__.__name__})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadReview(f"body is not JSON ({err.__class__.__name__})") from None
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise BadReview("not an AdmissionReview (kind must be AdmissionReview)")
    if review.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion {show(review.get('apiVersion'))} is not {API_VERSION}; list only v1 in "
                        "admissionReviewVersions")
    request = review.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("AdmissionReview has no request.uid (a non-empty string)")
    return request, too_deep


class Mutator:
    """AdmissionReview request -> response; no HTTP in here, so tests call it directly."""

    def __init__(self, settings, lookup, budget=8.0, on_error="allow", clock=time.monotonic):
        self.settings, self.lookup, self.budget, self.on_error, self.clock = settings, lookup, budget, on_error, clock

    def review(self, request, too_deep=False):
        """The AdmissionReview response for `request`; whatever its object holds, never raises.
        `too_deep`: the body nested deeper than JSON could parse (parse_review cut it)."""
        uid = request["uid"]
        fields = {"uid": uid, "namespace": _text(request.get("namespace")),
                  "operation": _text(request.get("operation"))}
        try:
            return self._review(uid, request, fields, too_deep)
        except ShimError as err:
            return self._failed(uid, f"shim: {err.message()}", fields)
        except Exception as err:  # the last line of defence: an answer per --on-error, not a dropped connection
            detail = " ".join(str(err).split())[:200]
            return self._failed(uid, f"shim: inject pod: internal error {type(err).__name__}: {detail}; "
                                     "report it with the pod's manifest", fields)

    def _failed(self, uid, message, fields):
        log("error", "injection failed", error=message, on_error=self.on_error, **fields)
        if self.on_error == "deny":
            return {"uid": uid, "allowed": False, "status": {"code": 400, "message": message}}
        return {"uid": uid, "allowed": True, "warnings": [message[:1000]]}

    def _review(self, uid, request, fields, too_deep):
        response = {"uid": uid, "allowed": True}
        obj = request.get("object")
        kind = request.get("kind")
        kind = kind.get("kind") if isinstance(kind, dict) else None
        if kind != "Pod" or obj is None:  # another kind, or an operation without an object (DELETE)
            log("info", "admitted: not a pod", kind=_text(kind), **fields)
            return response
        if not isinstance(obj, dict):
            raise ShimError("inject", "pod", f"request.object must be a mapping, not {show(obj, 40)}",
                            "send the pod as request.object")
        if too_deep or depth(obj) > MAX_DEPTH:
            raise ShimError("inject", "pod", f"the object nests more than {MAX_DEPTH} levels deep",
                            "no valid pod does; check what created it")
        pod = copy.deepcopy(obj)
        pod.setdefault("kind", "Pod")
        fields["pod"] = describe(pod).split(" ", 1)[1]
        injector = Injector(self.settings, lookup=self.lookup, deadline=self.clock() + self.budget)
        changed = injector.inject(pod)
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


def _text(value):
    return value if isinstance(value, str) else ""


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


class Deadlines:
    """One thread that shuts down connections whose time ran out.

    Socket timeouts bound each recv, not a request: a client sending a byte every
    few seconds would hold its thread forever.  Shutting the socket down makes the
    handler's blocked read return at the deadline, whatever the client does.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._heap = []  # (deadline, token): an entry stays until its time, armed or not
        self._armed = {}  # token -> socket
        self._seq = 0
        self._cv = threading.Condition()
        threading.Thread(target=self._run, name="deadlines", daemon=True).start()

    def arm(self, sock, seconds):
        with self._cv:
            self._seq += 1
            self._armed[self._seq] = sock
            heapq.heappush(self._heap, (self.clock() + seconds, self._seq))
            self._cv.notify()
            return self._seq

    def cancel(self, token):
        with self._cv:
            self._armed.pop(token, None)

    def _run(self):
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                when, token = self._heap[0]
                wait = when - self.clock()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                sock = self._armed.pop(token, None)
            if sock is None:
                continue
            try:
                # The plain socket's shutdown, also for a TLS socket: ends a read blocked in another thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, mutator, tls, client_timeout=CLIENT_TIMEOUT):
        self.mutator, self.tls, self.client_timeout = mutator, tls, client_timeout
        self.deadlines = Deadlines()
        super().__init__(address, Handler)

    def process_request_thread(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread: accept() never waits for a client.
        token = None
        try:
            request.settimeout(self.client_timeout)
            request = self.tls.context().wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            token = self.deadlines.arm(request, self.client_timeout)
            request.do_handshake()
        except (OSError, ValueError, ShimError) as err:  # ssl.SSLError is an OSError
            log("debug", "TLS handshake failed", client=client_address[0], error=" ".join(str(err).split()))
            self.shutdown_request(request)
            return
        finally:
            if token is not None:
                self.deadlines.cancel(token)
        super().process_request_thread(request, client_address)

    def handle_error(self, request, client_address):
        # A client that vanished mid-answer: one log line, not socketserver's traceback on stderr.
        err = sys.exc_info()[1]
        log("warn", "connection failed", client=client_address[0], error=f"{type(err).__name__}: {err}")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "shim-webhook"
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.client_timeout  # each recv/send; the deadline bounds a whole request
        self._token = None
        super().setup()

    def handle_one_request(self):
        # From waiting for the request line to the last byte of the body: one --client-timeout.
        self._token = self.server.deadlines.arm(self.connection, self.server.client_timeout)
        try:
            super().handle_one_request()
        finally:
            self._request_read()

    def _request_read(self):
        if self._token is not None:
            self.server.deadlines.cancel(self._token)
            self._token = None

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
        self._request_read()
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
            self.close_connection = True  # the body (if any) was not read: the stream is out of step
            self._bad(f"Content-Length {length} outside 1..{MAX_BODY}")
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed (or its deadline passed) mid-body
            self.close_connection = True
            return
        self._request_read()
        try:
            request, too_deep = parse_review(body)
        except BadReview as err:
            self._bad(str(err))
            return
        response = self.server.mutator.review(request, too_deep)
        self._send(200, json.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}))
        log("debug", "answered", uid=request["uid"], ms=round((time.monotonic() - started) * 1000, 1))

    def _bad(self, cause):
        message = f"shim: review request from {self.client_address[0]}: {cause}; send an AdmissionReview v1"
        log("warn", "bad request", error=message)
        self._send(400, json.dumps({"error": message}))


def parse_listen(text):
    """(host, port) of HOST:PORT, :PORT or [IPv6]:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ShimError("parse", "--listen", f"{show(text)} is not HOST:PORT (port 0-65535)",
                        "write e.g. :8443 or 127.0.0.1:8443")
    if host.startswith("[") != host.endswith("]"):
        raise ShimError("parse", "--listen", f"{show(text)} has an unclosed [", "write e.g. [::1]:8443")
    return host[1:-1] if host.startswith("[") else host or "0.0.0.0", int(port)


def serve(args, settings, lookup):
    """Run the webhook until SIGTERM; `settings` and `lookup` come from the CLI edge."""
    if not args.tls_cert or not args.tls_key:
        raise ShimError("parse", "shim k8s webhook", "--tls-cert and --tls-key are required (the API server "
                        "only calls webhooks over HTTPS)", "mount the serving certificate and pass both")
    address = parse_listen(args.listen)
    mutator = Mutator(settings, lookup, args.request_timeout, args.on_error)
    tls = ReloadingTLS(args.tls_cert, args.tls_key)
    try:
        server = Server(address, mutator, tls, args.client_timeout)
    except (OSError, OverflowError) as err:
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
