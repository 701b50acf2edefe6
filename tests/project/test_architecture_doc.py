"""docs/architecture.md stays true: every path it names exists, and every `file.py:name` it names
is defined in that file (a function, class or constant; `Class.method` for a method)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.paths import REPO

PAGE = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "operator" / "examsync"
TOP_LEVEL = {p.name for p in REPO.iterdir() if p.is_dir() and not p.name.startswith(".")}


def references(text: str) -> list[str]:
    """The code spans that name a path (`a/b.py`, `dir/`, `x.md`), with or without `:name`."""
    spans = re.findall(r"`([^`\s]+)`", text)
    return [s for s in spans if "<" not in s and re.search(r"(/|\.(py|md|yaml|json|toml))(:|$)", s)]


def resolve(path: str) -> Path:
    first = path.split("/", 1)[0]
    return REPO / path if first in TOP_LEVEL else PACKAGE / path


def defines(source: Path, name: str) -> bool:
    """`name` (or `Class.method`) is defined at the top of the module (or in that class)."""
    body: list[ast.stmt] = ast.parse(source.read_text(encoding="utf-8")).body
    *owners, last = name.split(".")
    for owner in owners:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == owner]
        if not found:
            return False
        body = found[0].body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == last:
            return True
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == last for t in targets):
            return True
    return False


def problems(text: str) -> list[str]:
    found = []
    for ref in references(text):
        path, _, name = ref.partition(":")
        target = resolve(path)
        if not target.exists():
            found.append(f"{ref}: no such file or folder")
        elif name and not defines(target, name):
            found.append(f"{ref}: {name} is not defined in {path}")
    return found


def test_every_path_and_name_on_the_page_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(references(text)) > 100
    assert problems(text) == []


def test_the_check_sees_a_stale_reference() -> None:
    text = "`domain/fs.py:ineligible_reason`, `domain/fs.py:gone_rule`, `kube/secrets.py`, `tests/support/`"
    assert problems(text) == [
        "domain/fs.py:gone_rule: gone_rule is not defined in domain/fs.py",
        "kube/secrets.py: no such file or folder",
    ]


def test_the_readme_links_the_page() -> None:
    assert "(docs/architecture.md)" in (REPO / "README.md").read_text(encoding="utf-8")
