"""No import cycle in the product package: every import counts, at module level or inside a
function (a lazy import is a cycle all the same), `if TYPE_CHECKING:` ones included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "examsync"
SANDBOX = ROOT / "sandbox" / "examsync_sandbox"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the product modules it imports."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per extra dot
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    # `from pkg import mod` imports the module pkg.mod when there is one
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_product_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "examsync.pipelines.runner" in graph
    upstream = {"examsync.adapters.factory", "examsync.adapters.upstream.client", "examsync.adapters.inspera.auth"}
    assert upstream <= set(graph)
    assert cycles(graph) == []


def test_the_sandbox_distribution_has_no_import_cycle() -> None:
    graph = import_graph(SANDBOX)
    assert "examsync_sandbox.simulators.wiseflow" in graph
    assert cycles(graph) == []


def test_the_runner_takes_the_registry_and_no_pipeline_knows_the_runner() -> None:
    graph = import_graph()
    assert "examsync.pipelines.registry" in graph["examsync.pipelines.runner"]
    assert [
        m
        for m, targets in graph.items()
        if "examsync.pipelines.runner" in targets and m.startswith("examsync.pipelines.")
    ] == []


def test_a_cycle_is_found_lazy_imports_included(tmp_path: Path) -> None:
    package = tmp_path / "examsync"
    (package / "pipelines").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipelines" / "__init__.py").write_text("")
    (package / "pipelines" / "runner.py").write_text("def run():\n    from examsync.pipelines import registry\n")
    (package / "pipelines" / "registry.py").write_text("from examsync.pipelines.runner import run\n")
    assert cycles(import_graph(package)) == [["examsync.pipelines.registry", "examsync.pipelines.runner"]]
