"""The relink kit: what glibc's LGPL-2.1 (section 6) asks of a statically linked binary.

The launcher links glibc's libc.a statically, so whoever distributes the binary
must let its users relink it against a modified glibc.  The kit holds the
launcher's object files (everything but the Debian libraries), the .pyc archive
appended to the launcher, and link.sh: the build's own link command with the
sysroot, the kit and gcc's library directory turned into variables.  With the
.debs of the inputs archive unpacked into SYSROOT (libc.a replaced as wished),
`SYSROOT=… link.sh OUT` produces the binary; unchanged, the very same bytes.
"""

import shlex
from pathlib import Path

SCRIPT = """\
#!/bin/sh
# Relink shim's launcher for {arch} (see ../../README.txt): SYSROOT=DIR {name} OUT
# SYSROOT: the .debs of ../../files unpacked with dpkg-deb -x (glibc's libc.a replaced as you wish).
set -eu
: "${{SYSROOT:?set SYSROOT to the unpacked .debs of this archive}}"
OUT=${{1:?usage: SYSROOT=DIR $0 OUT}}
KIT=$(cd "$(dirname "$0")" && pwd)
CC=${{CC:-{cc}}}
GCCLIB=$(dirname "$("$CC" -print-libgcc-file-name)")
"$CC" {args} -o "$OUT.launcher"
cat "$OUT.launcher" "$KIT/archive.zip" > "$OUT"
rm -f "$OUT.launcher"
chmod 755 "$OUT"
"""


class RelinkKit:
    """One arch's kit: members() lists (name, bytes | Path)."""

    def __init__(self, arch, linked, sysroot_root, archive):
        self.arch, self.linked, self.root, self.archive = arch, linked, Path(sysroot_root), archive

    def script(self):
        argv = self.linked.argv
        out = argv.index("-o")
        gcclib = None
        for arg in argv:
            if arg.endswith("/libgcc.a"):
                gcclib = str(Path(arg).parent)
        words = []
        for i, arg in enumerate(argv[1:], 1):
            if i in (out, out + 1):
                continue
            words.append(self._word(arg, gcclib))
        return SCRIPT.format(arch=self.arch, name="link.sh", cc=Path(argv[0]).name, args=" ".join(words)).encode()

    def _word(self, arg, gcclib):
        for obj in self.linked.objects:
            if arg == str(obj):
                return f'"$KIT/{obj.name}"'
        for base, var in ((str(self.root), "SYSROOT"), (gcclib, "GCCLIB")):
            if base and arg.startswith(base + "/"):
                return f'"${var}"' + shlex.quote(arg[len(base):])
        if arg.startswith("/"):
            raise RuntimeError(f"write the relink kit for {self.arch}: the link reads {arg}, which is neither "
                               "in the sysroot, the kit nor gcc's library directory")
        return shlex.quote(arg)

    def members(self):
        out = [(obj.name, obj) for obj in sorted(self.linked.objects)]
        return out + [("archive.zip", self.archive), ("link.sh", self.script())]
