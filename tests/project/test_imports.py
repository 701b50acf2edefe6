"""Tests and benchmarks import what they share by its full dotted name (`tests.support.sync_runs`,
`bench.run`), never by a bare name that works only because pytest or Python put the importing
file's own folder on sys.path; and no relative imports (a helper's name says where it lives)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO

TREES = ("tests", "bench", "scripts")


def local_names() -> set[str]:
    """Every module and package name of the trees: what a bare-name import of a sibling would use."""
    names = set(TREES)
    for tree in TREES:
        for path in (REPO / tree).rglob("*.py"):
            names.add(path.stem)
            names.update(path.relative_to(REPO / tree).parent.parts)
    return names - {"__init__", "conftest"}


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) of each import in the file."""
    found: list[tuple[int, str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level))
    return found


def bare_imports() -> list[str]:
    local = local_names()
    problems: list[str] = []
    for tree in TREES:
        for path in sorted((REPO / tree).rglob("*.py")):
            for line, module, level in imports(path):
                top = module.partition(".")[0]
                where = f"{path.relative_to(REPO)}:{line}"
                if level:
                    problems.append(f"{where}: relative import of {'.' * level}{module}")
                elif top in local and top not in TREES:
                    problems.append(f"{where}: bare-name import of {module}")
    return problems


def test_helpers_are_imported_by_their_full_dotted_name() -> None:
    assert bare_imports() == []


def test_the_check_sees_a_bare_name_import(tmp_path: Path) -> None:
    sibling = tmp_path / "test_x.py"
    sibling.write_text("from sync_runs import sync\nfrom tests.support.sync_runs import write_manifests\n")
    assert "sync_runs" in local_names()
    assert [(m, lvl) for _, m, lvl in imports(sibling)] == [("sync_runs", 0), ("tests.support.sync_runs", 0)]
