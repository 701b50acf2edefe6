"""Run sinks: audit records to Humio/LogScale and one Slack message per run (contracts/sinks.md).

`build_sinks` is the runner's SinkFactory: it builds the sinks an Institution configures, with
their Secrets already resolved for this run.
"""

from __future__ import annotations

import logging

from examsync.pipelines.runner import RunSink
from examsync.secrets import ResolvedSecrets
from examsync.sinks.humio import HumioSink
from examsync.sinks.slack import SlackNotifier
from examsync.spec import InstitutionSpec, check_url

log = logging.getLogger("examsync.sinks")

HUMIO_TOKEN_FIELD = "spec.audit.humio.tokenSecretRef"
SLACK_URL_FIELD = "spec.notifications.slack.webhookSecretRef"


def build_sinks(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> list[RunSink]:
    """The sinks of one run. Raises SecretMissing (the run is Stalled) when a referenced key is absent."""
    sinks: list[RunSink] = []
    humio = spec.audit.humio if spec.audit else None
    if humio is not None:
        token = secrets.value(HUMIO_TOKEN_FIELD, humio.tokenSecretRef.name, "token")
        sinks.append(HumioSink(humio.url, token, tags={"service": "examsync", "institution": spec.shortName}))
    slack = spec.notifications.slack if spec.notifications else None
    if slack is not None:
        url = secrets.value(SLACK_URL_FIELD, slack.webhookSecretRef.name, "url")
        try:
            check_url(url)
        except ValueError:
            # a notification channel never changes a run's result: say so and run without it
            log.warning(
                "Slack notifications off: the webhook URL is not valid (https required)",
                extra={"institution": institution, "field": SLACK_URL_FIELD,
                       "secret": slack.webhookSecretRef.name},
            )
        else:
            sinks.append(SlackNotifier(url, institution, suppress=frozenset(slack.suppressReasons)))
    return sinks


__all__ = ["HumioSink", "SlackNotifier", "build_sinks"]
