"""`examsync run`: the operator (what the container starts), with kopf's run options."""

from __future__ import annotations

import functools
import logging
import secrets

import click

from examsync.commands.options import from_settings, log_level_option
from examsync.settings import Settings, env_name


@click.command()
@click.option("--standalone", is_flag=True, help="Run without peering (no other replica is coordinated with).")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve Institutions in all namespaces.")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve this namespace (repeatable; globs).")
@click.option("--liveness", "liveness_endpoint", help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz.")
@click.option(
    "--peering",
    "peering_name",
    default=from_settings(lambda s: s.peering),
    show_default=str(Settings.model_fields["peering"].default),
    help=f"kopf peering object: only the replica with the highest priority is active (env {env_name('peering')}).",
)
@click.option(
    "--priority",
    type=int,
    default=None,
    help="Priority of this replica in peering (default: a random one, so that of several replicas exactly "
    "one is active and the others take over when it is gone; equal priorities would all pause).",
)
@log_level_option("Level of the JSON log lines on stderr, the chart's logLevel")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level (overrides --log-level).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only (overrides --log-level).")
@click.option("--metrics-port", type=int, default=9464, show_default=True, help="Serve /metrics on this port.")
def run(
    *,
    standalone: bool,
    clusterwide: bool,
    namespaces: tuple[str, ...],
    liveness_endpoint: str | None,
    peering_name: str,
    priority: int | None,
    log_level: str,
    verbose: bool,
    quiet: bool,
    metrics_port: int,
) -> None:
    """Run the operator: reconcile every Institution on its schedule until SIGTERM."""
    import kopf

    from examsync import event_loop
    from examsync.commands.store import audit_store
    from examsync.commands.upstream import configure_allowed_hosts
    from examsync.hosts import ENV_VAR, InvalidEntry
    from examsync.kube import kopf_logs
    from examsync.kube.api import KubeApi
    from examsync.kube.config import OperatorConfig
    from examsync.kube.main import build_registry
    from examsync.logs import setup_logging
    from examsync.settings import SettingsError
    from examsync.sinks import sink_factory

    try:
        settings = Settings.load(log_level=log_level, peering=peering_name)
        allowlist = configure_allowed_hosts(settings=settings)
    except InvalidEntry as exc:
        raise click.UsageError(f"{ENV_VAR}: {exc}") from None
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    store = audit_store(settings)  # one per process, shared by every Institution
    kopf_logs.install(setup_logging("debug" if verbose else "warning" if quiet else log_level))
    logging.getLogger("examsync.operator").info(
        "upstream hosts allowed", extra={"allowedHosts": str(allowlist), "defaultList": allowlist.default}
    )
    if not namespaces:
        clusterwide = True  # the chart's default (watchNamespaces: []) is every namespace
    config = OperatorConfig(
        api_factory=functools.partial(KubeApi.from_environment, settings.kubeconfig),
        metrics_port=metrics_port,
        sinks=sink_factory(store),
        audit_store=store,
    )
    if settings.pod_name:
        config.instance = settings.pod_name
    registry = build_registry(config)
    if priority is None:
        priority = secrets.randbelow(2**30) + 1
    with event_loop.runner() as runner:
        kopf.run(
            loop=runner.get_loop(),
            registry=registry,
            standalone=standalone,
            clusterwide=clusterwide,
            namespaces=list(namespaces),
            liveness_endpoint=liveness_endpoint,
            peering_name=None if standalone else peering_name,
            priority=priority,
        )
