"""The package's shape: no import cycles (counting imports inside functions too), every module
listed in docs/architecture.md, and ruff's lint and format checks clean.

Imports under ``if TYPE_CHECKING:`` are not counted: they never run, and exist only so that
annotations can name a type of a module that must not be imported at run time (it would close a
cycle, or cost start-up time).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "metak"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` (as ``ast.walk``) except the bodies of ``if TYPE_CHECKING:``.

    The ``else`` branch of such an ``if`` does run, so it is walked.
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every metak module ``name`` imports at run time, wherever the import statement is
    (functions too); imports under ``if TYPE_CHECKING:`` never run and are left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from metak.a import b` imports module metak.a.b when it is one, else metak.a.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found |= {target for target in targets if target in modules and target != name}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    return result


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_counts_runtime_imports_and_skips_type_checking_blocks(tmp_path):
    source = tmp_path / "a.py"
    source.write_text(
        "import typing\n"
        "from typing import TYPE_CHECKING\n"
        "from metak import b\n"
        "if TYPE_CHECKING:\n"
        "    from metak import c\n"
        "if typing.TYPE_CHECKING:\n"
        "    import metak.d\n"
        "else:\n"
        "    import metak.e\n"
        "def f():\n"
        "    if TYPE_CHECKING:\n"
        "        import metak.f\n"
        "    import metak.g\n"
        "if True:\n"
        "    from . import h\n",
        encoding="utf-8",
    )
    modules = {f"metak.{letter}": source for letter in "abcdefgh"}
    found = _imports("metak.a", source, modules)
    assert found == {"metak.b", "metak.e", "metak.g", "metak.h"}


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert sum(len(edges) for edges in graph.values()) > 50  # the walk found the imports
    assert _cycles(graph) == []


def test_every_module_is_in_the_architecture_document():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        name
        for name, path in _modules().items()
        if path.name != "__init__.py" or name == "metak"
        if f"`{name}`" not in text
    ]
    assert not missing, f"docs/architecture.md does not list: {missing}"


def _ruff() -> str:
    ruff = Path(sys.executable).with_name("ruff")
    found = str(ruff) if ruff.exists() else shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: it is a test dependency (pip install -e '.[test]')")
    return found


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command):
    done = subprocess.run(
        [_ruff(), *command], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _untyped_public(tree: ast.Module) -> Iterator[str]:
    """``name: missing annotations`` of every public function and public method of a module.

    Public: not starting with ``_`` (``__init__`` included, whose return needs no annotation),
    at module level or in a public class. ``self`` and ``cls`` need no annotation.
    """

    def missing(node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str) -> Iterator[str]:
        if node.name.startswith("_") and node.name != "__init__":
            return
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        names = [a.arg for a in every if a is not None and a.annotation is None]
        names = [name for name in names if name not in ("self", "cls")]
        if node.returns is None and node.name != "__init__":
            names.append("return")
        if names:
            yield f"{owner}{node.name}: {', '.join(names)}"

    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions):
            yield from missing(node, "")
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in node.body:
                if isinstance(member, functions):
                    yield from missing(member, f"{node.name}.")


def test_untyped_public_finder_finds_planted_gaps():
    tree = ast.parse(
        "def f(a, b: int) -> int: ...\n"
        "def g(x: int): ...\n"
        "def _private(a): ...\n"
        "class C:\n"
        "    def __init__(self, v): ...\n"
        "    def m(self, w: int) -> None: ...\n"
        "class _Hidden:\n"
        "    def m(self, w): ...\n"
    )
    assert list(_untyped_public(tree)) == ["f: a", "g: return", "C.__init__: v"]


def test_public_functions_are_typed():
    """Every public function and method of the package annotates its parameters and return
    (their numpydoc docstrings are ruff's ``D`` rules, run by ``test_ruff_is_clean``)."""
    gaps = [
        f"{path.relative_to(REPO)}: {gap}"
        for path in _modules().values()
        for gap in _untyped_public(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not gaps, "\n".join(gaps)
