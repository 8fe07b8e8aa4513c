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


def _module_name(path):
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve(importer, is_package, module, level):
    if not level:
        return module
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def test_shimtools_has_no_import_cycle():
    """Layers only look down (issue 17): no cycle among shimtools' modules, function-level imports
    included; the CLI edge (shimtools.cli) wires flags into objects and nothing below imports it."""
    graph = {}
    paths = sorted((REPO / "shimtools").rglob("*.py"))
    names = {_module_name(p) for p in paths}
    for path in paths:
        name = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(name, path.name == "__init__.py", node.module or "", node.level)
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in names and t != name}
        graph[name] = edges
    # Importing a.b.c also runs a/__init__ and a/b/__init__: package inits are edges too.
    for name in list(graph):
        parts = name.split(".")
        graph[name] |= {".".join(parts[:i]) for i in range(1, len(parts))} & names - {name}

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert cycles == []
    assert not [n for n, edges in graph.items() if "shimtools.cli" in edges and n != "shimtools.__main__"]


def test_the_tier_cannot_reach_public_registries():
    """conftest.py sends every non-loopback request to a dead loopback proxy: a lookup that would
    leave the machine fails at once instead."""
    import pytest

    from shim.errors import ShimError
    from shimtools.registry.oci import Lookup

    assert os.environ["HTTPS_PROXY"] == "http://127.0.0.1:9"
    with pytest.raises(ShimError) as err:  # refused by the dead proxy, not a timeout: nothing left loopback
        Lookup(cache_dir="", timeout=30).lookup("docker.io/library/busybox:1")
    assert "cannot reach registry registry-1.docker.io" in err.value.message()
    assert "Connection refused" in err.value.message()
