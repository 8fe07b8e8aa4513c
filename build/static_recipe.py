"""The default freezer, `static`: build/static/launcher.c statically linked
against Debian's libpython3.11.a and glibc's libc.a, with the zip of .pyc files
from stage.py appended.

One process, no extraction, no writable directory, no dynamic loader: the
result runs in a scratch image.  arm64 is cross-compiled with
aarch64-linux-gnu-gcc against the arm64 packages unpacked by sysroot.py (the
.pyc files are the same for both arches: one CPython version, both 64-bit LE).
"""

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CC = {"amd64": "x86_64-linux-gnu-gcc", "arm64": "aarch64-linux-gnu-gcc"}

# Builtin modules linked in (the stdlib's Modules/config.c table, minus what
# shim never needs; dropping unicodedata alone saves 1.1 MB).  Anything not
# here and not pure Python is absent: shim has fallbacks (json, ctypes).
BUILTINS = (
    "posix", "errno", "pwd", "_sre", "_codecs", "_weakref", "_functools", "_operator",
    "_collections", "_abc", "itertools", "atexit", "_signal", "_stat", "time", "_thread",
    "_locale", "_io", "faulthandler", "_tracemalloc", "_symtable", "_string",
    "_posixsubprocess", "_socket", "select", "fcntl", "grp", "math", "_struct", "binascii",
    "zlib", "_datetime", "_random", "_bisect", "_heapq", "array", "_md5", "_sha1",
    "_sha256", "_sha512", "_sha3", "_blake2", "_pickle", "_statistics", "_csv",
    "_opcode", "_tokenize",
)
# Created by the interpreter itself, listed with no init function (as config.c does).
CORE = ("marshal", "_imp", "_ast", "gc", "builtins", "sys")
OMITTED = ("unicodedata", "pyexpat", "_elementtree", "spwd", "syslog", "cmath", "xxsubtype")
CORE_INIT = {"marshal": "PyMarshal_Init", "_imp": "PyInit__imp", "_ast": "PyInit__ast", "gc": "PyInit_gc",
             "_warnings": "_PyWarnings_Init"}


def inittab_c(builtins=BUILTINS):
    """C source of _PyImport_Inittab; defining it keeps config.o (and all of
    its modules) out of the link."""
    names = list(builtins)
    lines = ['#include "Python.h"', ""]
    for name in names:
        lines.append(f"extern PyObject *PyInit_{name}(void);")
    for name, func in CORE_INIT.items():
        lines.append(f"extern PyObject *{func}(void);")
    lines += ["", "struct _inittab _PyImport_Inittab[] = {"]
    for name in names:
        lines.append(f'    {{"{name}", PyInit_{name}}},')
    for name, func in CORE_INIT.items():
        lines.append(f'    {{"{name}", {func}}},')
    lines += ['    {"builtins", NULL},', '    {"sys", NULL},', "    {0, 0}", "};", ""]
    return "\n".join(lines)


def compiler_version(arch):
    out = subprocess.run([CC[arch], "--version"], check=True, text=True, stdout=subprocess.PIPE)
    return out.stdout.splitlines()[0]


def link(arch, sysroot, workdir, log):
    """Compile and link the launcher for arch; return its path."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "inittab.c").write_text(inittab_c())
    out = work / "launcher"
    cflags = ["-O2", "-DNDEBUG", "-fno-ident", "-ffile-prefix-map=%s=/sysroot" % sysroot.root,
              "-ffile-prefix-map=%s=/src" % HERE, "-ffile-prefix-map=%s=/work" % work]
    includes = [f"-I{p}" for p in sysroot.include]
    argv = [CC[arch], *cflags, *includes, "-static", "-s", "-Wl,--build-id=sha1",
            "-o", str(out), str(HERE / "static/launcher.c"), str(work / "inittab.c"),
            str(sysroot.libpython), str(sysroot.libz), "-lm"]
    log(" ".join(argv[:1] + ["…", "-static", "-o", str(out)]))
    res = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # glibc warns that getpwnam & co. need its shared NSS modules at run time;
    # shim only uses the built-in "files" service, so those are expected.
    noise = ("statically linked applications requires at runtime", "in function `")
    for line in res.stdout.splitlines():
        if not any(n in line for n in noise):
            log(line)
    if res.returncode != 0:
        raise RuntimeError(f"link {out}: {CC[arch]} failed (exit {res.returncode})")
    return out


def deps(arch, sysroot):
    return {
        "python": sysroot.versions["libpython3.11-dev"].split("-")[0],
        "libpython3.11": sysroot.versions["libpython3.11-dev"],
        "zlib": sysroot.versions["zlib1g-dev"],
        "libc": glibc_version(arch),
        "cc": compiler_version(arch),
        "native": "_shim_native",
    }


def glibc_version(arch):
    pkg = {"amd64": "libc6-dev", "arm64": "libc6-dev-arm64-cross"}[arch]
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], text=True, stdout=subprocess.PIPE)
    return f"glibc {out.stdout.strip() or 'unknown'} (static)"
