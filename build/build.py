"""scripts/build's engine: freeze shim into dist/shim-linux-ARCH.

    scripts/build [--arch amd64|arm64|all] [--freezer static|nuitka|pyinstaller] [--dist DIR] [--work DIR]
    scripts/build [--locked | --inputs FILE] [--save-inputs FILE]
    scripts/build --update-lock            re-pin build/inputs.lock; prints `name: old → new`
    scripts/build --check-lock             warn when the mirror has newer versions than the lock

Steps per arch: fetch the locked inputs and verify their hashes
(build/inputs.lock), unpack them (cached) → stage shim/ with its build info →
check the module set → freeze with the chosen recipe → write the binary
atomically → rewrite SHA256SUMS.  Run by /usr/bin/python3.11 with PYTHONHASHSEED=0.
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))  # for shim.util.platforms, the one arch-name map

import inputs_archive  # noqa: E402
import lock  # noqa: E402
import relink  # noqa: E402
import resolve  # noqa: E402
import sbom  # noqa: E402
import stage  # noqa: E402
import sysroot  # noqa: E402

from shim.util import fsutil, platforms  # noqa: E402

ARCHES = platforms.ARCHES
FREEZERS = ("static", "nuitka", "pyinstaller")
DEFAULT_FREEZER = "static"
HOST_ARCH = platforms.arch_of(platform.machine())


def log(msg):
    sys.stderr.write(f"build: {msg}\n")
    sys.stderr.flush()


def write_atomic(path, data, mode=0o644):
    """dist/ files appear whole or not at all (shim.util.fsutil, the one implementation)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fsutil.write_atomically(str(path), lambda fd: fsutil.write_all(fd, data), mode)


def sha256sums(dist):
    """SHA256SUMS text for every shim-linux-* binary in dist (what is there is what is listed)."""
    lines = []
    for path in sorted(Path(dist).glob("shim-linux-*")):
        if path.is_file() and not path.name.startswith("."):
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return "".join(lines).encode()


def build_static(arch, inputs, cache, work, epoch):
    import static_recipe

    entries = inputs.entries
    root = sysroot.ensure(cache, arch, entries, log)
    cpython = sysroot.source_tree(entries, cache, log)
    setproctitle = sysroot.sdist_tree(entries, "setproctitle", cache, log)
    ca_pem, ca_version = sysroot.ca_bundle(root)
    deps = static_recipe.deps(arch, root, lock.for_arch(entries, arch), ca_version)
    info = stage.buildinfo(REPO, arch, "static", epoch, deps, provenance(inputs, arch))
    staged = stage.stage_source(REPO, work / "stage", info)
    # The SBOM, from the files this build unpacked, travels in the archive as package data.
    libgcc = sbom.libgcc_facts(static_recipe.cc_path(arch, "libgcc.a"))
    (staged / sbom.EMBEDDED).write_bytes(sbom.encode(sbom.document(json.loads(info), arch, inputs, ca_pem, libgcc)))
    modules = stage.declared_modules(staged.parent, root.stdlib, static_recipe.builtin_names())
    data = stage.package_data(staged.parent) + [(stage.CA_BUNDLE, ca_pem)]
    frozen = stage.startup_modules(staged.parent, modules)
    log(f"{len(frozen)} start-up modules frozen into the launcher")
    # A frozen module is imported from the launcher's data, never from the archive: only its
    # code would be there twice.  Packages stay (their __path__ points into the archive).
    archived = {name: m for name, m in modules.items() if name not in frozen or m[1]}
    zip_bytes = stage.archive(archived, data, epoch)
    log(f"{len(archived)} modules in the archive, {len(zip_bytes) // 1024} KiB, CA bundle {ca_version}")
    linked = static_recipe.link(arch, root, cpython, setproctitle, stage.frozen_c(modules, frozen),
                                work / "link", log)
    return linked.read_bytes() + zip_bytes, relink.RelinkKit(arch, linked, root.root, zip_bytes)


def provenance(inputs, arch):
    """Build-info keys saying whether arch's inputs were the locked ones."""
    drift = inputs.drift_record(arch)
    return {"build": "drifted" if drift else "locked", "drift": drift}


def sbom_beside(data):
    """dist/shim-linux-ARCH.cdx.json: the binary's embedded SBOM plus its own sha256."""
    from shim.util import sbom as runtime_sbom

    doc = runtime_sbom.from_binary(data)
    if doc is None:
        raise RuntimeError("write the SBOM beside the binary: the binary has no shim/_sbom.cdx.json")
    return doc


def build_other(freezer, arch, root, work, epoch):
    if freezer == "nuitka":
        import nuitka_recipe as recipe
    else:
        import pyinstaller_recipe as recipe
    if arch != HOST_ARCH:
        raise SystemExit(f"shim: build {freezer} for {arch}: only the host arch ({HOST_ARCH}) is supported; "
                         "use the default freezer (static) for cross builds")
    info = stage.buildinfo(REPO, arch, freezer, epoch, recipe.deps())
    staged = stage.stage_source(REPO, work / "stage", info)
    return recipe.build(staged.parent, work, log)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/build", description="Freeze shim into static binaries "
                                 "dist/shim-linux-ARCH (see docs/freeze.md).")
    ap.add_argument("--arch", default=HOST_ARCH, choices=ARCHES + ("all",),
                    help=f"target arch (default: the host's, {HOST_ARCH}); arm64 is cross-compiled")
    ap.add_argument("--freezer", default=DEFAULT_FREEZER, choices=FREEZERS,
                    help=f"default {DEFAULT_FREEZER}; nuitka and pyinstaller build for the host arch only")
    ap.add_argument("--dist", default=str(REPO / "dist"), help="output directory (default: dist/)")
    ap.add_argument("--work", default=str(REPO / ".work" / "build"), help="work directory (default: .work/build/)")
    ap.add_argument("--update-lock", action="store_true",
                    help="re-pin build/inputs.lock to what the mirror and pip serve today, then stop")
    ap.add_argument("--check-lock", action="store_true",
                    help="warn (exit 0) when the mirror has newer versions than build/inputs.lock, then stop")
    ap.add_argument("--locked", action="store_true",
                    help="use exactly the locked inputs; fail when the mirror no longer serves one "
                         "(default: follow the mirror and report each drifted input)")
    ap.add_argument("--save-inputs", metavar="FILE",
                    help="also write every input file used (with hashes, the effective lock and the "
                         "relink kit) into one archive FILE")
    ap.add_argument("--inputs", metavar="FILE",
                    help="build offline from an archive written by --save-inputs (the identical binary)")
    args = ap.parse_args(argv)
    if args.update_lock and (args.inputs or args.save_inputs or args.locked):
        ap.error("--update-lock only re-pins the lock: it takes no --locked, --inputs or --save-inputs")
    if args.inputs and args.locked:
        ap.error("--inputs builds from the archive's own inputs: --locked does not apply")
    if args.save_inputs and args.freezer != "static":
        ap.error("--save-inputs: only the static freezer's inputs are locked")
    if os.environ.get("PYTHONHASHSEED") != "0":
        # .pyc bytes depend on set ordering: re-run with a fixed hash seed.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-I", __file__, *sys.argv[1:]])
    if args.check_lock:
        return check_lock()
    cache = Path(os.environ.get("SHIM_CACHE", "/var/cache/shim"))
    if not args.inputs:
        for arch in ARCHES:
            sysroot.ensure_foreign_arch(arch, HOST_ARCH)
    if args.update_lock:
        old = lock.load() if lock.LOCK.exists() else []
        text = lock.update(cache, log)
        write_atomic(lock.LOCK, text.encode())
        # The changelog of the update, on stdout: what a reviewer reads before committing.
        lines = lock.changes(old, lock.parse(text))
        sys.stdout.write("".join(f"{line}\n" for line in lines) or "no changes: the lock names today's versions\n")
        log(f"wrote {lock.LOCK}: review the diff and commit it")
        return 0
    epoch = stage.source_date_epoch(REPO)
    arches = ARCHES if args.arch == "all" else (args.arch,)
    if args.inputs:
        # Offline: every file comes from the archive, verified, into the cache's store.
        saved = inputs_archive.load(args.inputs, cache, log)
        if saved.manifest.get("commit") != stage.commit_id(REPO):
            log(f"warning: the inputs were saved by a build of {saved.manifest.get('commit')}, this tree is "
                f"{stage.commit_id(REPO)}: the binaries will differ (check out that commit for identical ones)")
        inputs = resolve.resolve(saved.locked, arches, cache, log, "archive", saved.entries, args.inputs)
    else:
        inputs = resolve.resolve(lock.load(), arches, cache, log, "strict" if args.locked else "follow")
    dist = Path(args.dist)
    kits = {}
    for arch in arches:
        work = Path(args.work) / f"{args.freezer}-{arch}"
        if args.freezer == "static":
            data, kits[arch] = build_static(arch, inputs, cache, work, epoch)
        else:
            data = build_other(args.freezer, arch, sysroot.ensure(cache, arch, inputs.entries, log), work, epoch)
        out = dist / f"shim-linux-{arch}"
        write_atomic(out, data, 0o755)
        if args.freezer == "static":
            write_atomic(dist / f"shim-linux-{arch}.cdx.json", sbom_beside(data))
        log(f"{out} {len(data) / 1e6:.1f} MB sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    write_atomic(dist / "SHA256SUMS", sha256sums(dist))
    if args.save_inputs:
        manifest = {"commit": stage.commit_id(REPO), "source_date_epoch": epoch, "arches": list(arches),
                    "binaries": {f"shim-linux-{a}": hashlib.sha256((dist / f"shim-linux-{a}").read_bytes())
                                 .hexdigest() for a in arches}}
        sources = inputs_archive.glibc_source(inputs, cache, log)
        if sources[1]:
            log("warning: the saved inputs lack " + ", ".join(sources[1]) + "; a distributor must "
                "add glibc's source (LGPL-2.1 section 6): apt-get source glibc=VERSION")
        inputs_archive.save(args.save_inputs, inputs, manifest, kits, epoch, sources)
        log(f"saved the inputs ({len(inputs.entries)} files, relink kits for {', '.join(kits)}) "
            f"to {args.save_inputs}")
    smoke(dist / f"shim-linux-{HOST_ARCH}")
    if args.freezer == "static" and all((dist / f"shim-linux-{a}").is_file() for a in ARCHES):
        # The main job's second product: the multi-arch FROM-scratch tools image (issue #4).
        subprocess.run([sys.executable, "-I", str(REPO / "tools-image" / "build.py"), "--dist", str(dist)],
                       env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}, check=True)
    return 0


def check_lock():
    """The scripts/test check: one warning line per locked package the mirror has a newer version of
    (from apt's index as it is: no download).  Never fails: a stale lock still builds (it drifts)."""
    stale = lock.newer_on_mirror(lock.load())
    for name, old, new in stale:
        sys.stderr.write(f"warning: build/inputs.lock: {name} {old} is older than the mirror's {new}\n")
    if stale:
        sys.stderr.write("warning: build/inputs.lock misses updates (security fixes reach the binary only when "
                         "it is rebuilt): run scripts/build --update-lock, review the changes, commit\n")
    return 0


def smoke(binary):
    """Run the host binary once: it starts, reports itself, and execs a delegate."""
    if not binary.is_file():
        return
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    subprocess.run([str(binary), "--", "/bin/true"], check=True)
    log(f"smoke {binary.name}: {version.stdout.strip()}, runs /bin/true")


def run(argv=None):
    """main() with failures as one `shim: ...` line (the tool's output above says more)."""
    import subprocess

    try:
        return main(argv)
    except subprocess.CalledProcessError as err:
        cmd = err.cmd if isinstance(err.cmd, str) else " ".join(str(c) for c in err.cmd[:3])
        log_error(f"build: {cmd} … exited {err.returncode}; see its output above")
    except lock.LockError as err:
        log_error(f"build: {err}")
    except (RuntimeError, OSError) as err:
        log_error(f"build: {err}; see the output above, then re-run scripts/build")
    return 1


def log_error(line):
    sys.stderr.write(f"shim: {line}\n")


if __name__ == "__main__":
    sys.exit(run())
