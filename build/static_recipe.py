"""The default freezer, `static`: build/static/launcher.c statically linked
against Debian's libpython3.11.a, OpenSSL's libssl.a/libcrypto.a and glibc's
libc.a (all from build/inputs.lock), with the zip of .pyc files from stage.py
appended.

One process, no extraction, no writable directory, no dynamic loader: the
result runs in a scratch image.  arm64 is cross-compiled with
aarch64-linux-gnu-gcc against the arm64 packages unpacked by sysroot.py (the
.pyc files are the same for both arches: one CPython version, both 64-bit LE).

The compiler's own headers and libraries (gcc's include/, libgcc) are the only
toolchain parts used: glibc, its start files and kernel headers come from the
locked sysroot (-nostdinc/-nostdlib), so both arches link the same glibc.
"""

import re
import subprocess
from pathlib import Path

from shim.util import platforms  # build.py puts the repo on sys.path

HERE = Path(__file__).resolve().parent
CC = {arch: platforms.triplet(arch) + "-gcc" for arch in platforms.ARCHES}
TRIPLET = {arch: platforms.triplet(arch) for arch in platforms.ARCHES}

# Builtin modules already compiled into Debian's libpython3.11.a (its
# Modules/config.c table minus what shim never needs).
BUILTINS = (
    "posix", "errno", "pwd", "_sre", "_codecs", "_weakref", "_functools", "_operator",
    "_collections", "_abc", "itertools", "atexit", "_signal", "_stat", "time", "_thread",
    "_locale", "_io", "faulthandler", "_tracemalloc", "_symtable", "_string",
    "_posixsubprocess", "_socket", "select", "fcntl", "grp", "math", "_struct", "binascii",
    "zlib", "_datetime", "_random", "_bisect", "_heapq", "array", "_md5", "_sha1",
    "_sha256", "_sha512", "_sha3", "_blake2", "_pickle", "_statistics", "_csv",
    "_opcode", "_tokenize",
    # encodings.idna needs it: getaddrinfo() on a str host name encodes it with idna.
    "unicodedata",
)
# Compiled here from the CPython source of the same version (Debian builds
# them as shared modules, which a static binary cannot load):
# module -> sources below Modules/ (_ssl and _hashlib link against OpenSSL)
FROM_SOURCE = {
    "_ssl": ("_ssl.c",),
    "_hashlib": ("_hashopenssl.c",),
    "_json": ("_json.c",),
    "_contextvars": ("_contextvarsmodule.c",),
    "_asyncio": ("_asynciomodule.c",),
    "resource": ("resource.c",),
    "_queue": ("_queuemodule.c",),  # queue.SimpleQueue (concurrent.futures, asyncio)
    "termios": ("termios.c",),  # getpass (urllib.request), tty
}
# From the locked sdist: the C module registered as `setproctitle` itself (its
# pure-Python wrapper package only re-exports it, and imports logging).
SETPROCTITLE_SOURCES = ("setproctitle.c", "spt_debug.c", "spt_setup.c", "spt_status.c", "spt_strlcpy.c")
# Registered by launcher.c itself (build/static/shim_native.c).
LAUNCHER_BUILTINS = ("_shim_native",)
# Created by the interpreter itself, listed with no init function (as config.c does).
CORE = ("marshal", "_imp", "_ast", "gc", "builtins", "sys", "_warnings")
# In libpython3.11.a but left out of the table (never imported by shim; see stage.ABSENT):
# "pyexpat", "_elementtree", "spwd", "syslog", "cmath", "xxsubtype".
CORE_INIT = {"marshal": "PyMarshal_Init", "_imp": "PyInit__imp", "_ast": "PyInit__ast", "gc": "PyInit_gc",
             "_warnings": "_PyWarnings_Init"}


def builtin_names():
    """Every module name the binary has built in (the declared set stage.py checks against)."""
    return (frozenset(BUILTINS) | frozenset(FROM_SOURCE) | {"setproctitle"} | frozenset(LAUNCHER_BUILTINS)
            | frozenset(CORE))


def inittab_c():
    """C source of _PyImport_Inittab; defining it keeps config.o (and all of
    its modules) out of the link."""
    table = [(name, f"PyInit_{name}") for name in BUILTINS + tuple(FROM_SOURCE)]
    table.append(("setproctitle", "PyInit__setproctitle"))
    table += list(CORE_INIT.items())
    lines = ['#include "Python.h"', ""]
    lines += [f"extern PyObject *{func}(void);" for _, func in table]
    lines += ["", "struct _inittab _PyImport_Inittab[] = {"]
    lines += [f'    {{"{name}", {func}}},' for name, func in table]
    lines += ['    {"builtins", NULL},', '    {"sys", NULL},', "    {0, 0}", "};", ""]
    return "\n".join(lines)


def compiler_version(arch):
    out = subprocess.run([CC[arch], "--version"], check=True, text=True, stdout=subprocess.PIPE)
    return out.stdout.splitlines()[0]


def cc_path(arch, what):
    """The path of a file of the compiler's own (libgcc.a, crtbeginT.o…)."""
    return _cc_path(arch, what)


def _cc_path(arch, what):
    return subprocess.run([CC[arch], f"-print-file-name={what}"], check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()


def _libm(sysroot):
    """libm.a, or on amd64 the archives its GNU ld script names (absolute host paths)."""
    lib = sysroot.root / "usr/lib" / TRIPLET[sysroot.arch]
    head = (lib / "libm.a").read_bytes()[:400]
    if not head.startswith(b"/* GNU ld script"):
        return [lib / "libm.a"]
    group = re.search(rb"GROUP\s*\(([^)]*)\)", head).group(1).split()
    return [sysroot.root / p.decode().lstrip("/") for p in group]


class Compiler:
    """argv builders for one arch against one sysroot (nothing from the host's /usr/include or libc)."""

    def __init__(self, arch, sysroot, work, log, sources=()):
        self.arch, self.sysroot, self.work, self.log = arch, sysroot, Path(work), log
        root = sysroot.root
        # __FILE__ ends up in the binary (CPython's error helpers): no cache or work path may.
        maps = [f"-ffile-prefix-map={path}=/{name}" for name, path in sources]
        self.cc = CC[arch]
        self.cflags = ["-O2", "-DNDEBUG", "-fno-ident",
                       f"-ffile-prefix-map={root}=/sysroot", f"-ffile-prefix-map={HERE}=/src",
                       f"-ffile-prefix-map={self.work}=/work", *maps, "-nostdinc",
                       "-isystem", _cc_path(arch, "include"),
                       "-isystem", str(root / "usr/include" / TRIPLET[arch]),
                       "-isystem", str(root / "usr/include")]
        self.cflags += [f"-I{p}" for p in sysroot.include]

    def compile(self, source, obj, *extra):
        argv = [self.cc, *self.cflags, *extra, "-c", "-o", str(obj), str(source)]
        self._run(argv, obj)
        return obj

    def link(self, out, objects, libs):
        lib = self.sysroot.root / "usr/lib" / TRIPLET[self.arch]
        libgcc = Path(_cc_path(self.arch, "libgcc.a"))
        start = [lib / "crt1.o", lib / "crti.o", _cc_path(self.arch, "crtbeginT.o")]
        end = [_cc_path(self.arch, "crtend.o"), lib / "crtn.o"]
        group = ["-Wl,--start-group", str(libgcc), str(libgcc.parent / "libgcc_eh.a"),
                 str(lib / "libc.a"), "-Wl,--end-group"]
        argv = [self.cc, "-static", "-nostdlib", "-s", "-Wl,--build-id=sha1", "-o", str(out),
                *map(str, start), *map(str, objects), *map(str, libs), *map(str, _libm(self.sysroot)),
                *group, *map(str, end)]
        self.log(" ".join([self.cc, "…", "-static", "-o", str(out)]))
        self._run(argv, out)
        self.link_argv = argv  # for the relink kit (build/relink.py)
        return out

    def _run(self, argv, out):
        res = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # glibc warns that getpwnam & co. (and OpenSSL's dlopen) need its shared
        # libraries at run time; shim only uses the built-in files/dns services.
        noise = ("statically linked applications requires at runtime", "in function `")
        for line in res.stdout.splitlines():
            if not any(n in line for n in noise):
                self.log(line)
        if res.returncode != 0:
            raise RuntimeError(f"build {out}: {self.cc} failed (exit {res.returncode})")


def link(arch, sysroot, cpython, setproctitle, frozen_c, workdir, log):
    """Compile and link the launcher for arch (frozen_c: stage.frozen_c()); return its path."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    cc = Compiler(arch, sysroot, work, log, sources=(("cpython", cpython), ("setproctitle", setproctitle)))
    (work / "inittab.c").write_text(inittab_c())
    (work / "frozen.c").write_text(frozen_c)
    modules = Path(cpython) / "Modules"
    internal = ["-DPy_BUILD_CORE_BUILTIN", f"-I{sysroot.include[0] / 'internal'}", f"-I{modules}"]
    objects = [cc.compile(HERE / "static/launcher.c", work / "launcher.o"),
               cc.compile(work / "inittab.c", work / "inittab.o"),
               cc.compile(work / "frozen.c", work / "frozen.o", "-O0")]  # data only: -O0 compiles it faster
    for name, sources in FROM_SOURCE.items():
        extra = ["-include", str(HERE / "static/socket_prelude.h")] if name == "_ssl" else []
        for src in sources:
            objects.append(cc.compile(modules / src, work / f"{name}-{Path(src).stem}.o", *internal, *extra))
    spt = Path(setproctitle) / "src"
    version = (Path(setproctitle) / "PKG-INFO").read_text().split("\nVersion: ", 1)[1].split()[0]
    for src in SETPROCTITLE_SOURCES:
        objects.append(cc.compile(spt / src, work / f"spt-{Path(src).stem}.o",
                                  "-DHAVE_SYS_PRCTL_H=1", f'-DSPT_VERSION={version}'))
    libs = [sysroot.libpython, sysroot.libssl, sysroot.libcrypto, sysroot.libz]
    launcher = cc.link(work / "launcher", objects, libs)
    return Linked(launcher, cc.link_argv, objects)


class Linked:
    """The linked launcher and how: the argv and object files the relink kit ships."""

    def __init__(self, path, argv, objects):
        self.path, self.argv, self.objects = Path(path), list(argv), [Path(o) for o in objects]

    def read_bytes(self):
        return self.path.read_bytes()


def deps(arch, sysroot, entries, ca_version):
    """shim version's build_deps: every locked input and the toolchain."""
    out = {
        "python": sysroot.versions["libpython3.11-dev"].split("-")[0],
        "cc": compiler_version(arch),
        "native": "_shim_native",
        "ca-certificates": ca_version,
        "openssl": sysroot.versions["libssl-dev"],
        "glibc": sysroot.versions["libc6-dev"],
        "libpython3.11": sysroot.versions["libpython3.11-dev"],
        "zlib": sysroot.versions["zlib1g-dev"],
        "lock": {e.label: e.sha256 for e in entries},
    }
    for e in entries:
        if e.kind == "sdist":
            out[e.name] = e.version
    return out
