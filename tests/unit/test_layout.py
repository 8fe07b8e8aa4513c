"""The package layout keeps the frozen runtime apart from tooling and build code.

A static scan: no module under shim/ imports shimtools, build, tools_image or the
tests, however lazily (a function-level import would still ship a path into the
binary that cannot work there).
"""

import ast

from support import REPO

FORBIDDEN_ROOTS = {"shimtools", "build", "tools_image", "tests", "support", "pytest",
                   "hypothesis", "ruamel", "yaml", "jsonschema", "kubernetes_validate",
                   "requests", "botocore", "boto3", "urllib3"}
# The subcommands that dispatch to the tooling package do it by name through
# importlib, in one place: shim/cli.py's TOOLING table (checked below).


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def test_runtime_never_imports_tooling_or_build_code():
    bad = []
    for path in sorted((REPO / "shim").rglob("*.py")):
        for name, line in _imports(path):
            if name.split(".")[0] in FORBIDDEN_ROOTS:
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert not bad, "\n".join(bad)


def test_every_runtime_package_has_a_docstring():
    # Each capability's home says what it is for.
    for init in sorted((REPO / "shim").rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(REPO)} has no docstring"


# -- no cycles between packages --------------------------------------------------------------

def _package_graph(root, repo=REPO):
    """{package: {package it imports: [where]}} for the packages of `root` (shim.X or
    shimtools.X; a top-level module counts as its own package).  Every import counts,
    function-level ones included: a lazy import is still a dependency."""
    graph = {}
    for path in sorted((repo / root).rglob("*.py")):
        parts = list(path.relative_to(repo).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        src = ".".join(parts[:2])
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    pkg = parts if is_init else parts[:-1]
                    pkg = pkg[:len(pkg) - (node.level - 1)]
                    module = ".".join(pkg + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            for dst in sorted({".".join(name.split(".")[:2]) for name in targets
                               if name.split(".")[0] == root}):
                known = (repo / dst.replace(".", "/")).exists() or (repo / (dst.replace(".", "/") + ".py")).exists()
                if dst != src and known:  # `from shim import __version__` is no package
                    graph.setdefault(src, {}).setdefault(dst, []).append(f"{path.relative_to(repo)}:{node.lineno}")
    return graph


def _cycles(graph):
    """The strongly connected components with more than one package (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_packages():
    """Layers only import downwards (util < errors/log < loop/proc/net < sources < platform
    < config < streams/telemetry < run < commands < cli): a cycle, even through a lazy import,
    means two packages cannot be read, tested or left out of the binary one without the other."""
    problems = []
    for root in ("shim", "shimtools"):
        graph = _package_graph(root)
        for component in _cycles(graph):
            edges = [f"  {a} -> {b} ({', '.join(graph[a][b][:2])})"
                     for a in component for b in component if b in graph.get(a, {})]
            problems.append(" <-> ".join(component) + "\n" + "\n".join(edges))
    assert not problems, "import cycles between packages:\n" + "\n".join(problems)


def test_the_cycle_check_sees_a_lazy_import_cycle(tmp_path):
    # The checker itself, on a tree made here: a function-level import back up is a cycle,
    # a relative import counts, and a one-way dependency is not one.
    (tmp_path / "shim" / "low").mkdir(parents=True)
    (tmp_path / "shim" / "high").mkdir()
    (tmp_path / "shim" / "other.py").write_text("from shim.low import x\n")
    (tmp_path / "shim" / "low" / "__init__.py").write_text("def f():\n    from ..high import y\n")
    (tmp_path / "shim" / "high" / "__init__.py").write_text("from shim.low import x\n")
    graph = _package_graph("shim", tmp_path)
    assert graph["shim.low"] == {"shim.high": ["shim/low/__init__.py:2"]}
    assert _cycles(graph) == [["shim.high", "shim.low"]]
    (tmp_path / "shim" / "low" / "__init__.py").write_text("X = 1\n")
    assert _cycles(_package_graph("shim", tmp_path)) == []
