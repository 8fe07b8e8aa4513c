"""The frozen runtime never imports shimtools; the CLI reaches it lazily and says where it is when absent."""

import ast
import os
import subprocess
import sys

from support import REPO

ALLOWED = set()  # shim/cli.py reaches shimtools by name (importlib, its TOOLING table), never by an import


def _imports(tree):
    """(enclosing function or None, imported module) for every import in a module."""
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                found.extend((func, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((func, child.module or ""))
            visit(child, name)

    visit(tree, None)
    return found


def test_shim_package_never_imports_shimtools_or_yaml():
    offenders = []
    for path in sorted((REPO / "shim").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        for func, module in _imports(ast.parse(path.read_text(), rel)):
            if module.split(".")[0] in ("shimtools", "ruamel", "yaml") and (rel, func) not in ALLOWED:
                offenders.append(f"{rel}: {func or 'module level'} imports {module}")
            if module.split(".")[0] == "shimtools" and func is None:
                offenders.append(f"{rel}: module-level import of {module}")
    assert offenders == []
    from shim.cli import TOOLING

    assert set(TOOLING) == {"k8s", "dockerfile"} and {m.split(".")[0] for m in TOOLING.values()} == {"shimtools"}


def test_run_path_loads_no_tooling():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "shim", "--", "true"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert not [m for m in loaded if m.split(".")[0] in ("shimtools", "ruamel", "yaml")]


def test_without_shimtools_the_runtime_says_where_the_tools_are():
    code = ("import sys; sys.modules['shimtools'] = None; sys.modules['shimtools.cli'] = None\n"
            "from shim.cli import main; sys.exit(main(['k8s', 'inject']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 125
    assert proc.stderr == ("shim: k8s: not part of the runtime binary; the tooling ships in the Python package "
                           "(pip install 'shim[tools]') and in the tools image's -tooling variant\n")
