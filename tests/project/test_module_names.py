"""No module or package of the product, the sandbox or the tests is named like a standard-library
module (`secrets`, `operator`, `types`, ...): a reader of `import secrets` should not have to ask
which one is meant, and a folder put on sys.path would shadow the standard one."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.paths import REPO

ROOTS = (REPO / "operator" / "examsync", REPO / "sandbox" / "examsync_sandbox", REPO / "tests")


def names_like_stdlib(root: Path) -> list[Path]:
    """Modules (`x.py`) and packages (folders) under root whose name is a standard-library module's."""
    found = []
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        name = path.stem if path.suffix == ".py" else path.name if path.is_dir() else None
        if name is not None and name in sys.stdlib_module_names:
            found.append(path)
    return found


def test_no_module_is_named_like_a_standard_library_one() -> None:
    assert [str(p.relative_to(REPO)) for root in ROOTS for p in names_like_stdlib(root)] == []


def test_the_check_sees_such_names(tmp_path: Path) -> None:
    (tmp_path / "secrets.py").write_text("")
    (tmp_path / "operator").mkdir()
    (tmp_path / "secret_source.py").write_text("")
    assert [p.name for p in names_like_stdlib(tmp_path)] == ["operator", "secrets.py"]
