"""Find the command-line modules of the suite's packages and the imports between modules, by reading their source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tunebench", "benchmarks", "difftune", "deft")


def module_files(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the packages (a package's __init__ is the package)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def has_main_block(tree: ast.Module) -> bool:
    """Whether the module has a top-level `if __name__ == "__main__":` block."""
    return any(isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
               and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
               for node in tree.body)


def imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything the module imports, anywhere in it (a lazy import inside a function counts);
    `from a import b` yields both `a` and `a.b`, since b may be a submodule."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is the module's own package
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def parse_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, tuple[Path, ast.Module]]:
    """Dotted module name → (file, syntax tree)."""
    return {name: (path, ast.parse(path.read_text(), str(path))) for name, path in module_files(root, packages).items()}


def cli_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The modules with a `__main__` block, sorted."""
    return sorted(name for name, (_, tree) in parse_modules(root, packages).items() if has_main_block(tree))


def cli_imports(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """'file:line: module imports cli' for every import of a module with a `__main__` block by another module."""
    modules = parse_modules(root, packages)
    clis = {name for name, (_, tree) in modules.items() if has_main_block(tree)}
    found = []
    for name, (path, tree) in modules.items():
        imported = sorted({(line, target) for line, target in imported_names(tree, name, path.name == "__init__.py")
                           if target in clis and target != name})
        found += [f"{path.relative_to(root)}:{line}: {name} imports {target}" for line, target in imported]
    return found
