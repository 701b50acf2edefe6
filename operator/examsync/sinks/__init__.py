"""Run sinks: audit records to Humio/LogScale and to the audit history store, one Slack message per
run (contracts/sinks.md).

`sink_factory(store)` is the runner's SinkFactory: `build_sinks` builds the sinks an Institution
configures, with their Secrets already resolved for this run, plus one into the process's audit
history store when it has one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from examsync.api.spec import InstitutionSpec, check_url
from examsync.credentials import ResolvedSecrets
from examsync.pipelines.runner import RunSink, SinkFactory
from examsync.sinks.humio import HumioSink
from examsync.sinks.slack import SlackNotifier
from examsync.sinks.store import StoreSink

if TYPE_CHECKING:
    from examsync.adapters.auditstore.store import AuditStore

log = logging.getLogger("examsync.sinks")


def build_sinks(
    spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str, store: AuditStore | None = None
) -> list[RunSink]:
    """The sinks of one run. Raises SecretMissing (the run is Stalled) when a referenced key is absent."""
    sinks: list[RunSink] = []
    humio = spec.audit.humio if spec.audit else None
    if humio is not None:
        token = secrets.value(humio.tokenSecretRef, "token")
        sinks.append(HumioSink(humio.url, token, tags={"service": "examsync", "institution": spec.shortName}))
    slack = spec.notifications.slack if spec.notifications else None
    if slack is not None:
        url = secrets.value(slack.webhookSecretRef, "url")
        try:
            check_url(url)
        except ValueError:
            # a notification channel never changes a run's result: say so and run without it
            log.warning(
                "Slack notifications off: the webhook URL is not valid (https required)",
                extra={
                    "institution": institution,
                    "field": secrets.path_of(slack.webhookSecretRef),
                    "secret": slack.webhookSecretRef.name,
                },
            )
        else:
            sinks.append(SlackNotifier(url, institution, suppress=frozenset(slack.suppressReasons)))
    if store is not None:
        sinks.append(StoreSink(store, institution))
    return sinks


def sink_factory(store: AuditStore | None = None) -> SinkFactory:
    """The runner's SinkFactory (`examsync run`, `examsync sync`): each run's sinks, every one of
    them into `store`, the process's audit history store, when there is one."""
    if store is None:
        return build_sinks

    def build(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> Sequence[RunSink]:
        return build_sinks(spec, secrets, institution, store)

    return build


__all__ = ["HumioSink", "SlackNotifier", "StoreSink", "build_sinks", "sink_factory"]
