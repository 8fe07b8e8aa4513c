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
