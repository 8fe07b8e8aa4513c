"""`shim k8s inject|webhook|lint …` and `shim dockerfile wrap …`: parse, run, report.

Reached from the runtime CLI edge (shim/cli.py), which prints a ShimError as its
one line and turns it into the exit code; nothing here calls sys.exit.  Exit
codes: 0 done, 1 lint found something, 125 bad input (usage, YAML, manifests,
lookup), 118 a write failed.
"""

import argparse
import json
import math
import os
import sys

from shim.errors import ShimError

from . import yamlio
from .messages import show

EXIT_FOUND = 1
USAGE = """usage: shim k8s inject [-f FILE]... [--tools-image REF] [--mode emptydir|pvc] [--in-place] [--remove] ...
       shim k8s webhook --listen ADDR --tls-cert FILE --tls-key FILE --tools-image REF ...
       shim k8s lint [--format text|json|sarif] [--image-entrypoint-lookup] PATH...
       shim dockerfile wrap [-f Dockerfile] --tools-image REF [--in-place]
(`shim k8s inject --help` for every option)"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line ShimError instead of exiting."""

    def error(self, message):
        raise ShimError("parse", self.prog, message, f"see `{self.prog} --help`")

    def exit(self, status=0, message=None):  # --help
        if message:
            sys.stderr.write(message)
        raise _HelpShown(status)


class _HelpShown(Exception):
    def __init__(self, status):
        self.status = status


def seconds(text):
    """argparse type of the timeouts: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{show(text)} is not a positive number of seconds")
    return value


def _lookup_options(p):
    g = p.add_argument_group("image lookup (containers without command, base images)")
    g.add_argument("--image-source", action="append", default=[], metavar="IMAGE=LOCATION",
                   help="read IMAGE from LOCATION: oci:DIR[:REF], oci-archive:FILE[:REF], "
                        "containers-storage:REF or docker://REF (repeatable)")
    g.add_argument("--auth-file", action="append", default=[], metavar="FILE",
                   help="registry credentials (docker config.json / containers auth.json); before REGISTRY_AUTH_FILE "
                        "and ~/.docker/config.json")
    g.add_argument("--pull-secret", action="append", default=[], metavar="FILE",
                   help="an imagePullSecret: a Secret manifest or its .dockerconfigjson (repeatable)")
    g.add_argument("--ca-file", metavar="PEM", help="CA bundle to trust for registries (default: the system's)")
    g.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                   help="speak plain HTTP to HOST (repeatable)")
    g.add_argument("--lookup-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="per registry request (default 30)")
    g.add_argument("--cache-dir", metavar="DIR",
                   help="digest cache (default $SHIM_LOOKUP_CACHE or ~/.cache/shim/lookup); '' disables it")


def make_lookup(args):
    from .registry.oci import Lookup

    sources = {}
    for item in args.image_source:
        image, sep, location = item.partition("=")
        if not sep or not image or not location:
            raise ShimError("parse", "--image-source", f"{show(item)} is not IMAGE=LOCATION",
                            "write e.g. app:1=oci-archive:/tmp/app.tar")
        sources[image] = location
    return Lookup(sources=sources, auth_files=[*args.pull_secret, *args.auth_file], ca_file=args.ca_file,
                  insecure=tuple(args.insecure_registry), timeout=args.lookup_timeout, cache_dir=args.cache_dir)


def _inject_options(p):
    p.add_argument("--tools-image", default=os.environ.get("SHIM_TOOLS_IMAGE", ""), metavar="REF",
                   help="the tools image for the installer init container (env SHIM_TOOLS_IMAGE)")
    p.add_argument("--mode", choices=("emptydir", "pvc"), default="emptydir",
                   help="emptydir: installer init container + emptyDir (default); pvc: a versioned read-only claim")
    p.add_argument("--version", default="", help="pvc mode: the version directory, <version>-<digest12>")
    p.add_argument("--claim", default="shim-tools", help="pvc mode: the claim's name (default shim-tools)")
    p.add_argument("--arch", default="", help="pvc mode: node arch when the pod has no kubernetes.io/arch selector")
    p.add_argument("--container", action="append", default=[], metavar="NAME",
                   help="inject only this container (repeatable; default all)")
    p.add_argument("--init-containers", action="store_true", help="inject init containers too")
    p.add_argument("--shim-arg", action="append", default=[], metavar="ARG",
                   help="an option for shim, written before '--' (repeatable, e.g. --shim-arg=--grace=30s)")
    p.add_argument("--lookup", choices=("registry", "in-pod", "off"), default="registry",
                   help="containers without command: write the image's ENTRYPOINT/CMD (registry, default), "
                        "pass a per-platform --image-entrypoint map (in-pod), or fail (off)")
    p.add_argument("--platform", default="", help="with --lookup registry: use this platform's command "
                                                  "(default: the one every platform shares)")
    p.add_argument("--pin-digest", action="store_true", help="rewrite looked-up images to image@sha256:…")


def settings_from(args):
    from .k8s.inject import Settings

    return Settings(tools_image=args.tools_image, mode=args.mode, version=args.version, claim=args.claim,
                    arch=args.arch, containers=tuple(args.container), init_containers=args.init_containers,
                    shim_args=tuple(args.shim_arg), lookup=args.lookup, platform=args.platform,
                    pin_digest=args.pin_digest).check()


def parser():
    root = _Parser(prog="shim", add_help=False)
    top = root.add_subparsers(dest="group", required=True, parser_class=_Parser)
    k8s = top.add_parser("k8s", help="Kubernetes tooling").add_subparsers(dest="command", required=True,
                                                                           parser_class=_Parser)

    p = k8s.add_parser("inject", prog="shim k8s inject", help="put shim in front of the containers of manifests")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="YAML/JSON manifests, or a directory of them ('-' for stdin; repeatable; default stdin)")
    p.add_argument("--in-place", action="store_true", help="rewrite each FILE atomically instead of printing")
    p.add_argument("--remove", action="store_true", help="undo an injection")
    _inject_options(p)
    _lookup_options(p)

    w = k8s.add_parser("webhook", prog="shim k8s webhook", help="mutating admission webhook doing the same injection")
    w.add_argument("--listen", default=":8443", metavar="ADDR", help="HOST:PORT (default :8443)")
    w.add_argument("--tls-cert", metavar="FILE", help="serving certificate (PEM); reloaded when it changes")
    w.add_argument("--tls-key", metavar="FILE", help="its key (PEM)")
    w.add_argument("--request-timeout", type=seconds, default=8.0, metavar="SECONDS",
                   help="budget per AdmissionReview, below the webhook's timeoutSeconds (default 8)")
    w.add_argument("--on-error", choices=("allow", "deny"), default="allow",
                   help="a pod that cannot be injected: admit it unchanged with a warning (allow), or deny it")
    w.add_argument("--client-timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="a client's TLS handshake, and each of its requests (headers and body), must arrive "
                        "within this, or its connection is closed (default 10)")
    _inject_options(w)
    _lookup_options(w)

    lint = k8s.add_parser("lint", prog="shim k8s lint", help="find containers whose command bypasses a wrapped "
                                                             "ENTRYPOINT")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="manifests, Helm charts, kustomize directories")
    lint.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    lint.add_argument("--image-entrypoint-lookup", action="store_true",
                      help="report only containers whose image's ENTRYPOINT really is shim")
    _lookup_options(lint)

    docker = top.add_parser("dockerfile", help="Dockerfile tooling").add_subparsers(dest="command", required=True,
                                                                                    parser_class=_Parser)
    d = docker.add_parser("wrap", prog="shim dockerfile wrap", help="put shim in front of the final stage's "
                                                                   "ENTRYPOINT")
    d.add_argument("-f", "--file", default="Dockerfile", metavar="FILE", help="default ./Dockerfile; '-' for stdin")
    d.add_argument("--tools-image", default=os.environ.get("SHIM_TOOLS_IMAGE", ""), metavar="REF", required=False)
    d.add_argument("--in-place", action="store_true")
    d.add_argument("--shim-path", default="/shim", help="where the binary goes in the image (default /shim)")
    d.add_argument("--shim-arg", action="append", default=[], metavar="ARG", help="an option for shim (repeatable)")
    _lookup_options(d)
    return root


def _inject(args):
    return inject_command(args)  # below: the inject edge reads and writes the files itself


def _webhook(args):
    from .k8s.webhook import serve

    return serve(args, settings_from(args), make_lookup(args))


def _lint(args):
    from .k8s.lint import lint_command

    return lint_command(args, make_lookup(args) if args.image_entrypoint_lookup else None)


def _wrap(args):
    from .dockerfile import wrap_command

    return wrap_command(args, make_lookup(args))


# (group, subcommand) -> runner.  Flags become settings and a lookup here, at the edge; each
# subcommand's module is imported only when it runs, and none of them imports this module.
COMMANDS = {("k8s", "inject"): _inject, ("k8s", "webhook"): _webhook, ("k8s", "lint"): _lint,
            ("dockerfile", "wrap"): _wrap}
GROUPS = {group: tuple(c for g, c in COMMANDS if g == group) for group, _ in COMMANDS}


def main(argv):
    if len(argv) == 1 and argv[0] in GROUPS:
        # `shim k8s` alone: what to type next, not argparse's "arguments are required: command".
        sys.stderr.write(USAGE + "\n")
        raise ShimError("parse", f"shim {argv[0]}", "no subcommand given",
                        f"use one of {', '.join(GROUPS[argv[0]])} (`shim {argv[0]} SUBCOMMAND --help`)")
    try:
        args, extra = parser().parse_known_args(argv)
    except _HelpShown as shown:
        return shown.status
    if extra:
        prog = f"shim {args.group} {args.command}"
        raise ShimError("parse", prog, f"unrecognized arguments: {' '.join(extra)}", f"see `{prog} --help`")
    return COMMANDS[args.group, args.command](args)


# -- inject ----------------------------------------------------------------------------------


def _is_json(path, text):
    return path.endswith(".json") or text.lstrip().startswith(("{", "["))


def render(docs, as_json):
    try:
        if as_json:
            return "\n".join(json.dumps(d, indent=2) for d in docs) + "\n"
    except RecursionError:
        raise yamlio.too_deep("the output") from None
    return yamlio.dump_all(docs)


def inject_command(args):
    from .k8s.inject import Injector
    from .k8s.manifests import ShapeError, describe, is_known

    files = _expand_dirs(args.filename or [yamlio.STDIN])
    if args.in_place and yamlio.STDIN in files:
        raise ShimError("parse", "--in-place", "cannot rewrite stdin", "name the files with -f FILE")
    from .k8s.inject import Settings

    # Removal reads what to undo from each pod's annotation: it needs no settings.
    injector = Injector(Settings() if args.remove else settings_from(args), lookup=make_lookup(args))
    outputs = []
    # Everything is read and transformed before anything is written: a bad document leaves every file as it was.
    for path in files:
        name = "<stdin>" if path == yamlio.STDIN else path
        text = yamlio.read_text(path)
        docs = [d for d in yamlio.load_all(text, name) if d is not None]
        changed = False
        for doc in docs:
            if not is_known(doc):
                _note(f"{name}: {describe(doc)} passed through unchanged (not a pod or workload kind)")
                continue
            try:
                changed |= injector.remove(doc) if args.remove else injector.inject(doc)
            except ShapeError as err:  # which file, when several are read
                err.obj = f"{err.obj} in {name}"
                raise
        outputs.append((path, docs, changed, _is_json(path, text)))
    for note in injector.notes:
        _note(note)
    missing = set(args.container) - injector.seen if not args.remove else set()
    for name in sorted(missing):
        _note(f"no container named {name} in the input")
    if args.in_place:
        for path, docs, changed, as_json in outputs:
            if changed:
                yamlio.write_atomic(path, render(docs, as_json))
        return 0
    as_json = len(outputs) == 1 and outputs[0][3]
    all_docs = [d for _, docs, _, _ in outputs for d in docs]
    sys.stdout.write(render(all_docs, as_json) if all_docs else "")
    sys.stdout.flush()
    return 0


def _expand_dirs(paths):
    """A directory stands for its *.yaml, *.yml and *.json files, sorted (as kubectl -f DIR)."""
    out = []
    for path in paths:
        if path != yamlio.STDIN and os.path.isdir(path):
            out += sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith((".yaml", ".yml", ".json")))
        else:
            out.append(path)
    return out


def _note(text):
    sys.stderr.write(f"shim: note: {text}\n")
