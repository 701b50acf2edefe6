"""The product's layers import only what docs/architecture.md says they may: the pure rules
nothing, the adapters no pipeline, the pipelines no operator layer or command, and so on. A new
kind of import between layers fails here until the page (and the rule below) says it is right."""

from __future__ import annotations

from tests.support.import_graph import import_graph

# What each layer may import of the product (besides itself). A layer is a package of examsync
# (api, domain, pipelines, kube, commands, sinks), a part of adapters, or a top-level module.
MAY_IMPORT: dict[str, set[str]] = {
    "package": set(),
    "domain": set(),
    "store_url": set(),
    "settings": {"store_url"},
    "state": set(),
    "api": {"domain", "state", "errors", "hosts"},
    "errors": {"api"},
    "hosts": {"api", "errors", "settings"},
    "credentials": {"api", "errors"},
    "report": {"api", "domain", "errors"},
    "metrics": {"api", "domain", "report"},
    "logs": set(),
    "event_loop": set(),
    "crd": {"api"},
    "manifests": {"api", "credentials", "hosts"},
    "adapters.upstream": {"api", "errors", "hosts", "metrics", "settings"},
    "adapters.systems": {"adapters.upstream", "api", "domain"},
    "adapters.factory": {"adapters.systems", "api", "credentials"},
    "batching": {"metrics"},
    "adapters.store": {"audit", "batching", "metrics", "store_url"},
    "audit": {"api", "domain", "pipelines"},
    "pipelines": {
        "adapters.upstream",
        "adapters.systems",
        "adapters.factory",
        "api",
        "audit",
        "credentials",
        "domain",
        "errors",
        "hosts",
        "report",
        "state",
    },
    "sinks": {
        "adapters.upstream",
        "adapters.systems",
        "adapters.store",
        "api",
        "audit",
        "batching",
        "credentials",
        "domain",
        "metrics",
        "pipelines",
        "report",
    },
    "commands": {
        "adapters.upstream",
        "adapters.store",
        "api",
        "crd",
        "domain",
        "event_loop",
        "hosts",
        "logs",
        "manifests",
        "metrics",
        "pipelines",
        "report",
        "settings",
        "sinks",
        "state",
        "store_url",
    },
    # the audit store's lifetime is the process's: started at startup, flushed and closed at cleanup
    "kube": {
        "adapters.store",
        "api",
        "commands",
        "credentials",
        "domain",
        "event_loop",
        "hosts",
        "logs",
        "metrics",
        "pipelines",
        "report",
        "settings",
        "sinks",
        "state",
        "store_url",
    },
}


def layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "package"  # examsync/__init__.py: the version, which any layer may read
    if parts[0] in ("cli", "__main__", "commands"):
        return "commands"  # the entry point and what the commands do
    if parts[0] == "adapters":
        if len(parts) == 1 or parts[1] in ("upstream", "errors"):
            return "adapters.upstream"  # the HTTP layer and the error types every adapter shares
        if parts[1] == "auditstore":
            return "adapters.store"  # the audit history store: a database, not an outside system
        return "adapters.factory" if parts[1] == "factory" else "adapters.systems"
    return parts[0]


def crossings(graph: dict[str, set[str]]) -> list[str]:
    """`module -> module` for each import from one layer into another that the rules do not allow."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(target) not in {layer(module), "package"} and layer(target) not in MAY_IMPORT[layer(module)]
    )


def test_every_module_is_in_a_layer_with_rules() -> None:
    assert {layer(m) for m in import_graph()} == set(MAY_IMPORT)


def test_layers_import_only_what_they_may() -> None:
    assert crossings(import_graph()) == []


def test_the_pure_rules_import_nothing_of_the_product() -> None:
    graph = import_graph()
    assert [
        f"{m} -> {t}" for m, targets in graph.items() if layer(m) == "domain" for t in targets if layer(t) != "domain"
    ] == []


def test_a_forbidden_import_is_seen() -> None:
    graph = {
        "examsync.domain.fs": {"examsync.adapters.fs.client"},
        "examsync.adapters.fs.client": {"examsync.pipelines.runner"},
        "examsync.pipelines.runner": {"examsync.domain.fs"},
    }
    assert crossings(graph) == [
        "examsync.adapters.fs.client -> examsync.pipelines.runner",
        "examsync.domain.fs -> examsync.adapters.fs.client",
    ]
