"""Run sinks: audit records to Humio/LogScale and one Slack message per run (contracts/sinks.md).

`build_sinks` is the runner's SinkFactory: it builds the sinks an Institution configures, with
their Secrets already resolved for this run.
"""

from __future__ import annotations

import logging

from examsync.api.spec import InstitutionSpec, check_url
from examsync.credentials import ResolvedSecrets
from examsync.pipelines.runner import RunSink
from examsync.sinks.humio import HumioSink
from examsync.sinks.slack import SlackNotifier

log = logging.getLogger("examsync.sinks")


def build_sinks(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> list[RunSink]:
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
                extra={"institution": institution, "field": secrets.path_of(slack.webhookSecretRef),
                       "secret": slack.webhookSecretRef.name},
            )
        else:
            sinks.append(SlackNotifier(url, institution, suppress=frozenset(slack.suppressReasons)))
    return sinks


__all__ = ["HumioSink", "SlackNotifier", "build_sinks"]
