"""The package's import graph has no cycle, counting imports inside functions (they run too) and
leaving out `if TYPE_CHECKING:` blocks (they never run). A cycle means a module reaches back up to one
that depends on it: move the shared piece down, or the dispatching piece up, instead."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "redis_orchestrator"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> set[str]:
    """Every `redis_orchestrator...` name imported outside `if TYPE_CHECKING:` blocks; for `from m import
    x` both `m` and `m.x` (x may be a submodule)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("redis_orchestrator"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("redis_orchestrator"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {_module_name(p): _runtime_imports(ast.parse(p.read_text())) for p in PACKAGE.rglob("*.py")}
    return {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                walk(dep, path)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [])
    return found


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "redis_orchestrator.daemon.lifecycle" in graph
    assert cycles(graph) == [], "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_client_and_the_analyzer_do_not_import_the_daemon() -> None:
    """Applications import the client; `check` runs the analyzer: neither may pull in the daemon's loop."""
    graph = import_graph()
    daemon_side = {"daemon", "service", "supervisor", "node_worker", "sync", "http", "leader", "slowlog", "cli"}
    for name, deps in graph.items():
        if name.startswith(("redis_orchestrator.client", "redis_orchestrator.analysis")):
            assert not {d for d in deps if d.rsplit(".", 1)[-1] in daemon_side}, (name, deps)
