"""Every third-party module the package imports is declared in pyproject.toml, not left to
arrive with mitmproxy (which changes what it brings between versions)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"auditor", "addons", "bench", "tests", "tools"}


def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normal(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])
            for spec in project["dependencies"]}


def _imported(folder: Path) -> dict[str, Path]:
    """Each top-level module imported absolutely in the folder's files, with one file."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], path)
    return found


@pytest.mark.parametrize("folder", ["auditor", "addons"])
def test_every_third_party_import_is_declared(folder: str) -> None:
    owners = packages_distributions()
    declared = _declared()
    missing = [f"{module} ({path.relative_to(ROOT)})"
               for module, path in _imported(ROOT / folder).items()
               if module not in sys.stdlib_module_names and module not in OURS
               and not declared & {_normal(d) for d in owners.get(module, [module])}]
    assert missing == []
