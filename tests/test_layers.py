"""Imports point one way: tunebench < benchmarks < {difftune, deft}, the two methods never import each other, and no
project modules import each other in a cycle (docs/architecture.md, "The direction of imports"). The import graph
comes from `tests.import_graph`.
"""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import REPO_ROOT, Edge, find_edges, find_modules

LAYERS = {"tunebench": 0, "benchmarks": 1, "difftune": 2, "deft": 2}  # a package may import only lower layers


def layer_violations(root: Path, edges: list[Edge], layers: dict[str, int]) -> list[str]:
    """One message per import from a package to one of the same or a higher layer (other than itself)."""
    messages = []
    for edge in edges:
        source, target = edge.source.split(".")[0], edge.target.split(".")[0]
        if source != target and layers[target] >= layers[source]:
            rule = (f"{source} and {target} never import each other" if layers[target] == layers[source] else
                    f"{source} (layer {layers[source]}) must not import the higher {target} (layer {layers[target]})")
            messages.append(f"{edge.where(root)}: {edge.source} imports {edge.target}: {rule}")
    return messages


def import_cycles(root: Path, edges: list[Edge]) -> list[str]:
    """One message per strongly connected group of modules (Tarjan), with the imports that close it."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(module: str) -> None:
        """Tarjan's depth-first search from `module` (the graph is a few hundred modules: recursion is fine)."""
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    messages = []
    for group in groups:
        inside = [edge for edge in edges if edge.source in group and edge.target in group]
        messages.append(f"import cycle among {', '.join(group)}: "
                        + "; ".join(f"{edge.where(root)} {edge.source} → {edge.target}" for edge in inside))
    return messages


def check(root: Path, layers: dict[str, int]) -> tuple[list[str], list[str], list[Edge]]:
    """The layering violations, the cycles and the edges of the packages under `root`."""
    edges = find_edges(find_modules(root, layers))
    return layer_violations(root, edges, layers), import_cycles(root, edges), edges


def test_imports_point_from_higher_layers_to_lower_ones():
    violations, _, edges = check(REPO_ROOT, LAYERS)
    assert len(edges) > 200  # the walk found the project's imports: the test is not vacuous
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    _, cycles, _ = check(REPO_ROOT, LAYERS)
    assert not cycles, "\n".join(cycles)


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Write a package tree of `files` (path → source) under `root`."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_checker_catches_an_upward_import_a_sibling_import_and_a_cycle(tmp_path):
    write_tree(tmp_path, {
        "low/__init__.py": "from low import base\n",  # a package re-exporting its submodule is no cycle
        "low/base.py": "import os\n",
        "low/lazy.py": "def f():\n    from high.top import g  # inside a function: still an import\n",
        "low/a.py": "from . import b\n",
        "low/b.py": "from low.a import VALUE\n",
        "high/__init__.py": "",
        "high/top.py": "from low import base\nimport low.base as alias\n",
        "side/__init__.py": "",
        "side/inner/__init__.py": "from .other import run\n",
        "side/inner/other.py": "from ..tool import helper\n",
        "side/tool.py": "import high.top\n",
    })
    violations, cycles, edges = check(tmp_path, {"low": 0, "high": 1, "side": 1})
    assert {(edge.source, edge.target) for edge in edges} == {
        ("low", "low.base"), ("low.lazy", "high.top"), ("low.a", "low.b"), ("low.b", "low.a"),
        ("high.top", "low.base"), ("side.inner", "side.inner.other"), ("side.inner.other", "side.tool"),
        ("side.tool", "high.top")}
    assert violations == [
        "low/lazy.py:2: low.lazy imports high.top: low (layer 0) must not import the higher high (layer 1)",
        "side/tool.py:1: side.tool imports high.top: side and high never import each other"]
    assert cycles == ["import cycle among low.a, low.b: low/a.py:1 low.a → low.b; low/b.py:1 low.b → low.a"]
