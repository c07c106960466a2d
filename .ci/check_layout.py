"""Check the tree's layout rules: who may import what, module sizes, module docstrings.

Run by ``make lint`` (``python .ci/check_layout.py [ROOT]``, ROOT defaulting to the checkout
holding this file); exits 1 and prints one line per violation, ``path: what is wrong``.

The rules, for the folders ``protocol/``, ``master/``, ``worker/`` and ``horde/`` (which
setuptools installs as ``horde.protocol``, ``horde.master``, ``horde.worker`` and ``horde``):

- ``master/`` may import the worker's user API (``horde.worker.api`` and its modules), the
  part a user script imports, but never the worker's runtime (any other ``horde.worker``
  module);
- ``worker/api/`` never imports the worker's runtime either;
- ``protocol/`` imports neither zmq, gevent, ``horde.master`` nor ``horde.worker``;
- no module is longer than :data:`MAX_LINES` lines, and every module opens with a
  docstring.

Every import counts: ``import x``, ``from x import y``, relative imports (resolved against
the module's package) and imports inside functions or ``if TYPE_CHECKING:`` blocks.

Imports: the standard library only.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_LINES = 500
"""The most lines a module in the checked folders may have."""

FOLDERS = {"protocol": "horde.protocol", "master": "horde.master", "worker": "horde.worker"}
"""Source folder -> the package setuptools installs it as (``horde/`` is ``horde``)."""

WORKER = "horde.worker"
USER_API = "horde.worker.api"
PROTOCOL_FORBIDDEN = ("zmq", "gevent", "horde.master", "horde.worker")


def package_of(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` (a .py file under ``root``) once installed."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    top = FOLDERS.get(parts[0], parts[0])
    rest = parts[1:]
    if rest and rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join([top, *rest])


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module ``tree`` imports, anywhere in it, as ``(line, dotted name)``.

    ``from x import y`` yields ``x`` and ``x.y`` (``y`` may be a submodule); a relative
    import is resolved against ``module``'s package.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield node.lineno, source
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{source}.{alias.name}"


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def import_problems(module: str, imported: str) -> str | None:
    """Why ``module`` may not import ``imported``, or None when it may."""
    guarded = _within(module, "horde.master") or _within(module, USER_API)
    runtime = _within(imported, WORKER) and imported != WORKER and not _within(imported, USER_API)
    if guarded and runtime:
        side = "the master" if _within(module, "horde.master") else "the user API"
        return (
            f"imports the worker runtime module {imported} ({side} may import only "
            f"{USER_API}, the part user scripts import)"
        )
    if _within(module, "horde.protocol"):
        for forbidden in PROTOCOL_FORBIDDEN:
            if _within(imported, forbidden):
                return f"imports {forbidden} (protocol/ is pure: no zmq, gevent, master or worker)"
    return None


def check_file(path: Path, root: Path) -> list[str]:
    """The violations in one module, each as ``relative/path.py[:line]: problem``."""
    relative = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    problems = []
    lines = len(text.splitlines())
    if lines > MAX_LINES:
        problems.append(f"{relative}: {lines} lines, over the limit of {MAX_LINES}")
    try:
        tree = ast.parse(text, filename=relative)
    except SyntaxError as exc:
        return [*problems, f"{relative}:{exc.lineno}: does not parse: {exc.msg}"]
    if ast.get_docstring(tree) is None:
        problems.append(f"{relative}: no module docstring (say its responsibility and imports)")
    module = package_of(path, root)
    reported = set()  # one problem per import statement (``from x import y`` yields x, x.y)
    for line, imported in imported_modules(tree, module, path.name == "__init__.py"):
        problem = import_problems(module, imported)
        if problem is not None and line not in reported:
            reported.add(line)
            problems.append(f"{relative}:{line}: {problem}")
    return problems


def check_tree(root: Path) -> list[str]:
    """Every violation in the checked folders under ``root``, in path order."""
    problems = []
    for folder in (*FOLDERS, "horde"):
        for path in sorted((root / folder).rglob("*.py")):
            problems.extend(check_file(path, root))
    return problems


def main(argv: list[str]) -> int:
    """Check ``argv[0]`` (default: this checkout); print the violations; 1 if any."""
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    problems = check_tree(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"layout check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
