"""Names in horde's source: no module-level name hides one of Python's builtins."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import horde
import horde.master
import horde.protocol
import horde.worker

PACKAGES = (horde, horde.master, horde.protocol, horde.worker)


def _module_names(tree: ast.Module) -> list[tuple[str, int]]:
    """Return each name a module binds at its top level, with its line."""
    names: list[tuple[str, int]] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.append((node.name, node.lineno))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [(t.id, node.lineno) for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [((a.asname or a.name).split(".")[0], node.lineno) for a in node.names]
    return names


def test_no_module_shadows_a_builtin() -> None:
    """No class, function, constant or import at a module's top level takes a builtin's name."""
    shadowing = [
        f"{path.name}:{line} {name}"
        for package in PACKAGES
        for path in sorted(Path(package.__file__).parent.glob("*.py"))
        for name, line in _module_names(ast.parse(path.read_text(encoding="utf-8")))
        if name in vars(builtins)
    ]
    assert shadowing == []
