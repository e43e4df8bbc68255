"""CLIs are leaves: no module of the suite imports a module that has a `__main__` entry (tests may, to call `main`)."""

import textwrap
from pathlib import Path

from tests.import_graph import PACKAGES, REPO_ROOT, cli_modules, find_edges, find_modules


def cli_imports(root: Path = REPO_ROOT, packages=PACKAGES) -> list[str]:
    """'file:line: module imports cli' for every import of a module with a `__main__` block by another module."""
    clis = set(cli_modules(root, packages))
    edges = find_edges(find_modules(root, packages))
    return [f"{edge.where(root)}: {edge.source} imports {edge.target}" for edge in edges if edge.target in clis]


def test_no_module_imports_a_cli():
    found = cli_imports()
    assert not found, "library code belongs in library modules; these import a CLI:\n" + "\n".join(found)


def write_package(root, files: dict[str, str]) -> None:
    """Write {relative path: source} under root."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def test_the_scan_finds_every_form_of_import_of_a_cli(tmp_path):
    main_block = 'def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n'
    write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/tool.py": main_block,
        "pkg/sub/__init__.py": "from .. import tool\n",
        "pkg/sub/deep.py": main_block,
        "pkg/absolute.py": "import pkg.tool\n",
        "pkg/from_package.py": "from pkg import tool\n",
        "pkg/from_module.py": "from pkg.tool import main\n",
        "pkg/relative.py": "from .tool import main\n",
        "pkg/lazy.py": "def run():\n    from pkg.sub.deep import main\n    main()\n",
        "pkg/clean.py": "import os\nfrom pkg import sub\n",
    })
    assert cli_modules(tmp_path, ("pkg",)) == ["pkg.sub.deep", "pkg.tool"]
    assert cli_imports(tmp_path, ("pkg",)) == [
        "pkg/absolute.py:1: pkg.absolute imports pkg.tool",
        "pkg/from_module.py:1: pkg.from_module imports pkg.tool",
        "pkg/from_package.py:1: pkg.from_package imports pkg.tool",
        "pkg/lazy.py:2: pkg.lazy imports pkg.sub.deep",
        "pkg/relative.py:1: pkg.relative imports pkg.tool",
        "pkg/sub/__init__.py:1: pkg.sub imports pkg.tool",
    ]
