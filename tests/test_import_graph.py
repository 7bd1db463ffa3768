"""The package's architecture, held: its import graph has no cycle, and its subpackages import each
other only downwards, in the order written once below.

Imports inside functions count (they run too); `if TYPE_CHECKING:` blocks don't (they never run).
Relative imports are resolved. A cycle or an arrow back up means a module reaches up to one that
depends on it: move the shared piece down, or the dispatching piece up, instead."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "redis_orchestrator"

# Lowest first: a module may import its own subpackage, the base modules, and any layer before its
# own. `client` sits beside the daemon's layers without using them (applications import it; it may
# read `config` lazily for `from_config`); the daemon and the CLI are the top.
BASE = ("errors", "logs")
LAYERS = (
    "catalog",
    "analysis",
    "config",
    "wire",
    "topology",
    "reconcile",
    "client",
    "devcluster",
    "daemon",
    "cli",
    "__main__",
)
NOT_IMPORTED_BY = {
    # Applications import the client and CI runs the analyzer: neither may pull in the daemon's
    # machinery, whatever the layer order allows.
    "client": {"wire", "topology", "reconcile", "devcluster", "daemon", "cli"},
}
MAX_TOP_LEVEL_MODULES = 8


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every `redis_orchestrator...` name imported outside `if TYPE_CHECKING:` blocks, relative
    imports resolved; for `from m import x` both `m` and `m.x` (x may be a submodule)."""
    found: set[str] = set()
    here = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("redis_orchestrator"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("redis_orchestrator"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {
        _module_name(p): _runtime_imports(ast.parse(p.read_text()), _module_name(p), p.name == "__init__.py")
        for p in PACKAGE.rglob("*.py")
    }
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


def layer_of(module: str) -> str:
    """`redis_orchestrator.daemon.fleet` -> daemon; top-level modules are their own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def arrows_up(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes against LAYERS or NOT_IMPORTED_BY, as `module -> dependency`."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    wrong = []
    for module, deps in graph.items():
        own = layer_of(module)
        for dep in deps:
            other = layer_of(dep)
            if other == own or other in BASE or other == "__init__":
                continue
            if own in BASE or own == "__init__":
                wrong.append(f"{module} -> {dep} (a base module imports nothing of ours)")
            elif other not in rank or own not in rank:
                wrong.append(f"{module} -> {dep} (a layer LAYERS does not name)")
            elif rank[other] > rank[own] or other in NOT_IMPORTED_BY.get(own, ()):
                wrong.append(f"{module} -> {dep}")
    return sorted(wrong)


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_relative_imports_are_resolved() -> None:
    tree = ast.parse("from .values import Val\nfrom . import slots\nfrom ..catalog.model import Kind\n")
    found = _runtime_imports(tree, "redis_orchestrator.analysis.walker", is_package=False)
    assert {"redis_orchestrator.analysis.values", "redis_orchestrator.analysis.slots"} <= found
    assert "redis_orchestrator.catalog.model.Kind" in found


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "redis_orchestrator.daemon.lifecycle" in graph
    assert cycles(graph) == [], "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_finder_sees_an_arrow_back_up() -> None:
    graph = {
        "redis_orchestrator.wire.batch": {"redis_orchestrator.daemon.metrics", "redis_orchestrator.logs"},
        "redis_orchestrator.client.keys": {"redis_orchestrator.topology.model"},
        "redis_orchestrator.daemon.metrics": {"redis_orchestrator.analysis.findings"},
    }
    assert arrows_up(graph) == [
        "redis_orchestrator.client.keys -> redis_orchestrator.topology.model",
        "redis_orchestrator.wire.batch -> redis_orchestrator.daemon.metrics",
    ]


def test_subpackages_import_only_downwards() -> None:
    graph = import_graph()
    layers = {layer_of(m) for m in graph}
    assert layers - {"__init__", "__main__", *BASE} <= set(LAYERS), "a new subpackage needs its place in LAYERS"
    assert arrows_up(graph) == []


def test_the_top_of_the_package_holds_only_entry_points_and_base_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    for folder in (p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"{folder.name}/__init__.py: say what the subpackage is for and exports"
