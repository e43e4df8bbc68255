"""The suite's modules and the imports between them, read from source with `ast` (nothing is imported).

`import a.b`, `from a import b` (b a submodule or a name), relative imports, and imports inside functions or `if`
blocks all count, since each runs when its code does. An import names the most specific project module it reaches;
the parent packages it runs on the way are not edges, or every package `__init__` that re-exports a submodule would
form a cycle with it. Used by the layering, CLI-leaf and console-script tests.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tunebench", "benchmarks", "difftune", "deft")


@dataclass(frozen=True)
class Edge:
    """One import statement: module `source` (in `path`, at `line`) imports project module `target`."""

    source: str
    target: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        """file:line, relative to `root`."""
        return f"{self.path.relative_to(root)}:{self.line}"


def find_modules(root: Path = REPO_ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Every module of the packages under `root`, by dotted name (a package by its `__init__.py`)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted `name` that is a project module; None outside the project."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or None


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement reaches: `a.b` for `from a import b` (b a submodule or a name in a);
    relative imports are made absolute against `module`'s package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[:len(package) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def find_edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import between project modules, anywhere in a module's code."""
    edges = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = imported_names(node, module, path.name == "__init__.py")
                targets = {resolve(name, modules) for name in names} - {None, module}
                edges += [Edge(module, target, path, node.lineno) for target in sorted(targets)]
    return edges


def has_main_block(tree: ast.Module) -> bool:
    """Whether the module has a top-level `if __name__ == "__main__":` block (it is a command-line tool)."""
    return any(isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
               and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
               for node in tree.body)


def parse_modules(root: Path = REPO_ROOT, packages=PACKAGES) -> dict[str, tuple[Path, ast.Module]]:
    """Dotted module name → (file, syntax tree)."""
    return {name: (path, ast.parse(path.read_text(), str(path))) for name, path in find_modules(root, packages).items()}


def cli_modules(root: Path = REPO_ROOT, packages=PACKAGES) -> list[str]:
    """The modules with a `__main__` block, sorted."""
    return sorted(name for name, (_, tree) in parse_modules(root, packages).items() if has_main_block(tree))
