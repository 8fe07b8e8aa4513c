"""Issue 17's typing rules for shim/, checked statically (mypy itself runs in the lint tier).

- every public function (no leading underscore; methods and nested helpers too) has its
  parameters and its return type annotated;
- typing costs nothing at start: no module imports `typing` (or `__future__`, which is a
  real import too) outside an `if TYPE_CHECKING:` block, whose flag is the module's own
  `TYPE_CHECKING = False` (importing the name from typing would import typing);
- mypy covers every runtime package with check_untyped_defs (pyproject.toml).
"""

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted((REPO / "shim").rglob("*.py"))


def _public_functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node


def _unannotated(node):
    args = node.args
    params = [a for a in args.posonlyargs + args.args + args.kwonlyargs]
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    missing = [a.arg for a in params if a.annotation is None]
    if node.returns is None:
        missing.append("return")
    return missing


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_public_functions_are_annotated(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{node.name} (line {node.lineno}): {', '.join(missing)}"
           for node in _public_functions(tree) if (missing := _unannotated(node))]
    assert not bad, f"{path.relative_to(REPO)}: annotate " + "; ".join(bad)


def _run_time_imports(tree):
    """Import nodes that execute at run time: everything but the bodies of `if TYPE_CHECKING:`."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                todo.append(child)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_typing_is_never_imported_at_run_time(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for node in _run_time_imports(tree):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        bad += [f"line {node.lineno}: {name}" for name in names
                if name.split(".")[0] in ("typing", "typing_extensions", "__future__", "dataclasses")]
    assert not bad, (f"{path.relative_to(REPO)} imports typing machinery at run time ({bad}); "
                     "put it under `TYPE_CHECKING = False` / `if TYPE_CHECKING:` and quote the annotation")


def test_mypy_covers_every_runtime_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["check_untyped_defs"] is True
    assert "shim" in config["files"] or "shim/" in config["files"], config["files"]
