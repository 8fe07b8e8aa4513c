#!/usr/bin/python3
"""Stage the tooling variant of the tools image: shim + shimtools + ruamel.yaml (+ BuildKit's Dockerfile
parser) as one Python lib dir.

    tools-image/tooling.py [--out dist/tooling]      # then:
    podman build --isolation=chroot -f Dockerfile.tooling --build-arg BASE=… -t shim-tools:0.1.0-tooling .

The runtime tools image is FROM scratch and holds only the static binary, which
never carries the tooling (shimtools is not part of the frozen runtime).  The
`-tooling` variant runs `shim k8s webhook|inject|lint` and `shim dockerfile wrap`
from source on a Python 3.11+ base: this script copies the sources and the pure-
Python ruamel.yaml (its optional C extension is left out) into OUT/lib, so the
Containerfile needs no pip, no network and no RUN step (a base without a shell
works too).  The `dockerfile` package (BuildKit's parser, an x86_64 extension:
PyPI has no other wheel) is copied with its licence when installed; where it
cannot load (arm64) `shim dockerfile wrap` uses shimtools.buildkit's port of
the same parser.  Files are copied with fixed mtimes, sorted, so the layer's
content depends on the inputs only.  Stdlib only.
"""

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("shim", "shimtools")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*~")


def ruamel_dir():
    """The installed `ruamel` package directory (namespace package: located through ruamel.yaml)."""
    spec = importlib.util.find_spec("ruamel.yaml")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("shim: stage tooling: ruamel.yaml is not installed; pip install 'shim[tools]' first")
    return Path(next(iter(spec.submodule_search_locations))).parent


def dockerfile_files():
    """The `dockerfile` package's extension module and dist-info (licence), or () when not installed."""
    spec = importlib.util.find_spec("dockerfile")
    if spec is None or not spec.origin:
        return ()
    module = Path(spec.origin)
    return (module, *sorted(module.parent.glob("dockerfile-*.dist-info")))


def stage(out, epoch):
    lib = Path(out) / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    for name in PACKAGES:
        shutil.copytree(REPO / name, lib / name, ignore=IGNORE)
    shutil.copytree(ruamel_dir(), lib / "ruamel", ignore=IGNORE)
    parser = dockerfile_files()
    if not parser:
        print("shim: stage tooling: note: the dockerfile package is not installed; `shim dockerfile wrap` in the "
              "image will use shimtools.buildkit's port of BuildKit's parser (pip install 'shim[tools]' on x86_64 "
              "to include it)", file=sys.stderr)
    for path in parser:
        if path.is_dir():
            shutil.copytree(path, lib / path.name, ignore=IGNORE)
        else:
            shutil.copy2(path, lib / path.name)
    for path in sorted(lib.rglob("*")):
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    return lib


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "dist" / "tooling"))
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    print(stage(args.out, epoch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
