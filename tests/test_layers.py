"""The dependency rule of the layout (DESIGN.md): `cli -> search -> proxies -> mixer`, and
`store` under `search` and `cli` only. A module that imports upward is refused here, with
its file and line, including imports inside functions."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAY_NOT_IMPORT = {
    "mixer": {"proxies", "search", "store", "cli", "ray", "duckdb"},
    "proxies": {"search", "store", "cli"},
    "store": {"proxies", "search", "cli", "ray", "torch"},
    "search": {"cli"},
}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_package_imports_a_layer_above_it(package):
    upward = [f"{path.relative_to(ROOT)}:{line} imports {name}"
              for path in sorted((ROOT / package).rglob("*.py"))
              for line, name in _imports(path) if name in MAY_NOT_IMPORT[package]]
    assert not upward, upward
