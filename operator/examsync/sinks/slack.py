"""SlackNotifier: at most one message per run per Institution, about items a person must look at."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiolimiter import AsyncLimiter

from examsync.adapters.slack.client import SlackClient
from examsync.adapters.upstream.limits import per_loop
from examsync.audit import AuditRecord
from examsync.domain.outcomes import Action, Reason
from examsync.report import InstitutionReport

log = logging.getLogger("examsync.sinks.slack")

KEYS_PER_REASON = 5
SEND_SECONDS = 15.0  # waiting for the rate limit and sending, at most
# Slack accepts about one message per second per webhook; shared by every Institution in the process.
_LIMITERS: dict[tuple[int, str], AsyncLimiter] = {}


def _limiter(url: str) -> AsyncLimiter:
    return per_loop(_LIMITERS, url, lambda: AsyncLimiter(1, 1.0))


def notifiable_reason(record: AuditRecord) -> str | None:
    """The reason an audit record is worth a message for, or None (failed items and MissingResponsible)."""
    if record.action is Action.FAILED:
        return str(record.reason or Reason.UPSTREAM_ERROR)
    if record.reason is Reason.MISSING_RESPONSIBLE:
        return str(Reason.MISSING_RESPONSIBLE)
    return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier:
    """Collects notifiable items during the run (codes, counts and item keys only) and sends once."""

    def __init__(self, webhook_url: str, institution: str, *, suppress: frozenset[str] = frozenset()) -> None:
        self._url = webhook_url
        self.institution = institution  # namespace/name
        self.suppress = suppress
        self.counts: Counter[str] = Counter()
        self.keys: dict[str, list[str]] = {}
        self.sent = False

    def record(self, record: AuditRecord) -> None:
        reason = notifiable_reason(record)
        if reason is not None:
            self._add(reason, record.key)

    def _add(self, reason: str, key: str) -> None:
        if reason in self.suppress:
            return
        self.counts[reason] += 1
        keys = self.keys.setdefault(reason, [])
        if key and len(keys) < KEYS_PER_REASON:
            keys.append(key)

    async def finish(self, report: InstitutionReport) -> None:
        # Whole-source failures have no item records: they count once, keyed by pipeline.
        for failure in report.failures():
            if failure.key in report.enabled or failure.key in report.pipelines:
                self._add(failure.reason, failure.key)
        if not self.counts:
            return
        message = self.message(report)
        client = SlackClient(self._url)
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await _limiter(self._url).acquire()
                await client.post(message)
            self.sent = True
        except Exception as exc:  # a notification channel never changes the run's result
            why = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            log.warning(
                "Slack notification not sent: %s", why, extra={"institution": self.institution, "runId": report.run_id}
            )
        finally:
            await client.aclose()

    def message(self, report: InstitutionReport) -> dict[str, Any]:
        namespace, _, name = self.institution.partition("/")
        total = sum(self.counts.values())
        header = (
            f":warning: examsync: Institution *{_escape(self.institution)}* ({report.mode} run "
            f"{_escape(report.run_id)}): {total} item(s) need attention"
        )
        lines = []
        for reason, count in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            keys = ", ".join(f"`{_escape(k)}`" for k in self.keys.get(reason, []))
            more = ", …" if count > len(self.keys.get(reason, [])) and keys else ""
            lines.append(f"• *{reason}*: {count}" + (f" ({keys}{more})" if keys else ""))
        how = f"All of them: `kubectl get inst {name} -o yaml -n {namespace}`"
        text = "\n".join([header, *lines, how])
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": header}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": how}]},
        ]
        return {"text": text, "blocks": blocks}
