"""The build refuses a binary that would lack a module the runtime can import.

stage.declared_modules() walks every shim module (and the stdlib they reach):
each module must be in the archive, built in (static_recipe.builtin_names()) or
declared absent with a reason.  Runs against the build host's python3.11 stdlib
(the same version the binary freezes); no compiler needed.
"""

import sys
import sysconfig
from pathlib import Path

import pytest

from support import REPO

sys.path.insert(0, str(REPO / "build"))
import stage  # noqa: E402
import static_recipe  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _stage(tmp_path, source):
    pkg = tmp_path / "shim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(source)
    return tmp_path


def test_the_real_tree_passes():
    modules = stage.declared_modules(REPO, STDLIB, static_recipe.builtin_names())
    assert "shim.cli" in modules and "shim.net.tls" in modules and "ssl" in modules
    assert not any(name.startswith(("shimtools", "tests", "build")) for name in modules)


@pytest.mark.parametrize("source, missing", [
    ("import _no_such_module\n", "_no_such_module"),
    ("def later():\n    import _lzma2\n", "_lzma2"),   # a lazy import counts: any configured path
    ("import _ctypes_test\n", "_ctypes_test"),          # an extension module of the host, not built in
])
def test_a_missing_module_fails_the_build(tmp_path, source, missing):
    with pytest.raises(stage.MissingModules) as err:
        stage.declared_modules(_stage(tmp_path, source), STDLIB, static_recipe.builtin_names())
    assert missing in str(err.value) and "shim.mod" in str(err.value)


def test_a_builtin_of_the_host_that_the_binary_lacks_is_caught(tmp_path):
    """pyexpat is built into Debian's python3.11 but not into the binary: only ABSENT excuses it."""
    names = static_recipe.builtin_names()
    assert "pyexpat" not in names
    absent = {k: v for k, v in stage.ABSENT.items() if k != "pyexpat"}
    with pytest.raises(stage.MissingModules) as err:
        stage.declared_modules(_stage(tmp_path, "import pyexpat\n"), STDLIB, names, absent=absent)
    assert "pyexpat (imported by shim.mod" in str(err.value)
