"""Every import package exists, imports, and keeps the dependency direction of DESIGN.md."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["continual", "streams", "strategies", "tpp", "recsys"]
# Which first-party packages each package may import: continual imports none of ours, streams
# only continual, and a domain package continual and streams but never another domain.
ALLOWED = {
    "continual": set(),
    "streams": {"continual"},
    "strategies": {"continual", "streams"},
    "tpp": {"continual", "streams"},
    "recsys": {"continual", "streams"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports(package):
    assert importlib.import_module(package).__doc__


def _imported_packages(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_dependency_direction(package):
    for path in (ROOT / package).rglob("*.py"):
        first_party = set(_imported_packages(path)) & set(PACKAGES) - {package}
        assert first_party <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {first_party}"
