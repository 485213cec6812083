"""The import graph of ``src/zkadapt`` holds its layers (DESIGN.md section 1, issue 15).

Every import is read with :mod:`ast`, including imports inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency, and a type-only one still ties two
packages' changes together. Two rules:

- no cycle between top-level units (a package such as ``storage`` or a module such as
  ``config``);
- a leaf package (crypto, storage, channel, learning, aggregation, escrow, cardano) never
  imports the
  layers above it (config, keyfiles, protocol, party, session, cli, assembly).

A failure names the importing module and line, so the fix starts where the edge is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import zkadapt

PACKAGE = Path(zkadapt.__file__).resolve().parent

LEAVES = frozenset({"crypto", "storage", "channel", "learning", "aggregation", "escrow", "cardano"})
UPPER = frozenset({"config", "keyfiles", "protocol", "party", "session", "cli", "assembly"})


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` unit imports ``target`` unit at ``module``:``line``."""

    source: str
    target: str
    module: str
    line: int

    def where(self) -> str:
        return f"{self.module}:{self.line} ({self.source} -> {self.target})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(dotted: str) -> str | None:
    """The top-level unit of ``zkadapt.x.y`` (``x``); None outside the package."""
    parts = dotted.split(".")
    if parts[0] != "zkadapt" or len(parts) < 2:
        return None
    return parts[1]


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names ``node`` imports (``from zkadapt import x`` counts as ``zkadapt.x``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
        base = ".".join([*anchor, base] if base else anchor)
    if base == "zkadapt":
        return [f"zkadapt.{alias.name}" for alias in node.names]
    return [base]


def import_edges() -> list[Edge]:
    """Every import between two different top-level units of ``zkadapt``."""
    edges: list[Edge] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        source = _unit(module)
        if source is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                target = _unit(name)
                if target is not None and target != source:
                    edges.append(Edge(source, target, module, getattr(node, "lineno", 0)))
    return edges


def _cycle(edges: list[Edge]) -> list[Edge] | None:
    """One cycle of the unit graph as its edges, or None (depth-first search)."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[Edge] = []

    def visit(unit: str) -> list[Edge] | None:
        state[unit] = 1
        for target, edge in sorted(graph.get(unit, {}).items()):
            if state.get(target) == 1:  # back edge: the path from target to here closes a loop
                starts = [i for i, e in enumerate(stack) if e.source == target]
                return [*stack[starts[0] :], edge] if starts else [edge]
            if state.get(target) is None:
                stack.append(edge)
                found = visit(target)
                if found:
                    return found
                stack.pop()
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if state.get(unit) is None:
            found = visit(unit)
            if found:
                return found
    return None


def test_the_import_graph_is_read() -> None:
    edges = import_edges()
    assert any(e.source == "cli" for e in edges)
    assert any(e.source == "assembly" and e.target == "storage" for e in edges)


def test_no_cycle_between_top_level_packages_and_modules() -> None:
    cycle = _cycle(import_edges())
    assert cycle is None, "import cycle:\n  " + "\n  ".join(e.where() for e in cycle or [])


def test_leaf_packages_never_import_the_layers_above_them() -> None:
    upward = [e for e in import_edges() if e.source in LEAVES and e.target in UPPER]
    assert not upward, "leaf imports an upper layer:\n  " + "\n  ".join(e.where() for e in upward)


def test_the_cycle_finder_reports_the_offending_edges() -> None:
    edges = [Edge("a", "b", "zkadapt.a.x", 3), Edge("b", "a", "zkadapt.b.y", 7)]
    cycle = _cycle(edges)
    assert cycle is not None
    assert {e.where() for e in cycle} == {
        "zkadapt.a.x:3 (a -> b)",
        "zkadapt.b.y:7 (b -> a)",
    }
    assert _cycle([Edge("a", "b", "zkadapt.a", 1)]) is None
