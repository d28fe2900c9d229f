"""The code's layering: imports run one way (no cycle among the project's modules) and no import hides
inside a function, so a new door or hook plugs into the service instead of copying wiring."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dialer", "actors", "scheduler", "config")
# the layers, lowest first: a module may import only from its own layer or a lower one
LAYERS = [
    {"config", "config.settings", "config.logging"},
    {
        "dialer",
        "dialer.errors",
        "dialer.clock",
        "dialer.money",
        "dialer.recall",
        "dialer.phones",
        "dialer.pace",
        "dialer.keys",
        "dialer.states",
        "dialer.validation",
        "dialer.templates",
        "dialer.hours",
        "dialer.outcomes",
        "dialer.models",
        "dialer.secrets",
        "dialer.faults",
    },
    {"dialer.store", "dialer.store.redis_store", "dialer.connection", "dialer.embedded", "dialer.outage"},
    {"dialer.telephony", "dialer.telephony.base", "dialer.telephony.simulator", "dialer.telephony.twilio"},
    {"dialer.providers", "dialer.context"},
    {"dialer.lifecycle"},
    {"dialer.intake"},
    {"dialer.groups"},
    {"dialer.engine"},
    {"dialer.views", "dialer.broker"},
    {"dialer.ops"},
    {"dialer.service"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a file imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in modules:
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_the_projects_modules() -> None:
    """A cycle would mean two layers need each other: the graph of dialer, actors, scheduler and config
    imports must be acyclic."""
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_core_imports_only_downwards() -> None:
    """Each core module imports from its own layer or lower ones (rules -> store -> lifecycle -> intake ->
    groups -> engine -> service); the doors (CLI, web, actors, scheduler, client) sit above all of them."""
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    door = len(LAYERS)  # anything not in a layer is a door (cli, web, watch, devstack, client, actors, ...)
    wrong = [
        f"{mod} (layer {rank[mod]}) imports {dep} (layer {rank.get(dep, door)})"
        for mod, deps in graph().items()
        if mod in rank
        for dep in deps
        if rank.get(dep, door) > rank[mod]
    ]
    assert wrong == []


def test_no_import_inside_a_function() -> None:
    """Imports sit at the top of each module, where the layering is visible."""
    hidden = [
        f"{path.relative_to(ROOT)}:{sub.lineno} {ast.unparse(sub)}"
        for path in project_modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for sub in ast.walk(node)
        if isinstance(sub, ast.Import | ast.ImportFrom)
    ]
    assert hidden == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-module loop is reported."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
