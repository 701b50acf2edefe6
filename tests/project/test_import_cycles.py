"""No import cycle in the product package: every import counts, at module level or inside a
function (a lazy import is a cycle all the same), `if TYPE_CHECKING:` ones included."""

from __future__ import annotations

from pathlib import Path

from tests.support.import_graph import SANDBOX, import_graph


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
