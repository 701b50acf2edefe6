"""Audit records to Humio and Slack notifications, against the sandbox simulators over loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from examsync.credentials import ResolvedSecrets
from examsync.report import InstitutionReport
from examsync.sinks import HumioSink, SlackNotifier, build_sinks
from examsync_sandbox.simulators.humio import INGEST_TOKEN
from tests.support.audit_records import record_of
from tests.support.metric_samples import sample_value
from tests.support.probe import PERSONAL, Probe, forget_inspera_tests, inspera_world, seed_fs


def dropped() -> float:
    return sample_value("examsync_audit_records_dropped_total", {"sink": "humio"}) or 0.0


def no_personal_data(payload: object) -> list[str]:
    text = json.dumps(payload, ensure_ascii=False)
    return [p for p in PERSONAL if p in text]


def reasons(report: InstitutionReport) -> dict[str, int]:
    """Items per reason over every pipeline of the run."""
    out: dict[str, int] = {}
    for pipeline in report.pipelines.values():
        for (_, reason), n in pipeline.reasons.items():
            out[reason] = out.get(reason, 0) + n
    return out


def empty_report() -> InstitutionReport:
    return InstitutionReport(name="x", namespace="obs", mode="Apply", run_id="r", started=datetime.now(UTC))


async def test_humio_receives_every_audit_record_without_personal_data(probe: Probe) -> None:
    seed_fs(probe.sandbox)
    before = dropped()
    report = await probe.run(probe.spec(slack=False))
    humio = probe.sandbox.world("humio")
    records = humio.records
    assert len(records) == 5 == sum(sum(p.actions.values()) for p in report.pipelines.values())
    assert {r["runId"] for r in records} == {report.run_id}
    assert {r["action"] for r in records} == {"created", "skipped", "failed"}
    assert inspera_world(probe.sandbox).writes["create"] == 3  # the real pipeline wrote to Inspera
    assert all(r["key"].startswith("fs-inspera:") and r["orgId"] == "OBS" for r in records)
    assert humio.tags == [{"service": "examsync", "institution": "OBS"}]  # 5 records: one POST
    assert all(e["timestamp"].endswith("Z") for e in humio.events)
    assert no_personal_data(humio.requests) == []
    assert dropped() == before


async def test_humio_batches_hold_at_most_batch_size(probe: Probe) -> None:
    sink = HumioSink(
        probe.sandbox.url("humio"),
        INGEST_TOKEN,
        {"service": "examsync", "institution": "OBS"},
        batch_size=2,
        batch_seconds=60,
    )
    for n in range(5):
        sink.record(record_of({"key": f"fs-inspera:{n}", "timestamp": "2026-11-27T10:00:00.000Z", "action": "created"}))
    await sink.finish(empty_report())
    humio = probe.sandbox.world("humio")
    assert sorted(len(body[0]["events"]) for body in humio.requests) == [1, 2, 2]
    assert sorted(r["key"] for r in humio.records) == [f"fs-inspera:{n}" for n in range(5)]
    assert sink.sent == 5 and sink.dropped == 0


async def test_humio_down_never_fails_the_run_and_drops_are_counted(probe: Probe) -> None:
    seed_fs(probe.sandbox, failing=False)
    reference = await probe.run(probe.spec(slack=False, humio=False))
    forget_inspera_tests(probe.sandbox)  # so the second run writes the same creates again
    await probe.sandbox.server("humio").stop()  # Humio is down: connections are refused
    before = dropped()
    report = await probe.run(probe.spec(slack=False))
    assert not report.failed and not reference.failed
    assert inspera_world(probe.sandbox).writes["create"] == 6  # both runs wrote their 3 creates
    assert {n: p.counts for n, p in report.pipelines.items()} == {n: p.counts for n, p in reference.pipelines.items()}
    assert dropped() - before == 4  # every record of the run, none silently lost


async def test_humio_wrong_token_drops_records(probe: Probe) -> None:
    sink = HumioSink(probe.sandbox.url("humio"), "not-the-token", {"service": "examsync"}, batch_seconds=60)
    before = dropped()
    sink.record(record_of({"key": "fs-inspera:a", "timestamp": "2026-11-27T10:00:00.000Z"}))
    await sink.finish(empty_report())
    assert probe.sandbox.world("humio").rejected == 1
    assert dropped() - before == 1


async def test_humio_full_buffer_drops_instead_of_blocking(probe: Probe) -> None:
    sink = HumioSink(
        probe.sandbox.url("humio"),
        INGEST_TOKEN,
        {"service": "examsync"},
        capacity=3,
        batch_size=500,
        batch_seconds=60,
    )
    before = dropped()
    for n in range(5):
        sink.record(record_of({"key": f"fs-inspera:{n}", "timestamp": "2026-11-27T10:00:00.000Z"}))
    await sink.finish(empty_report())
    assert len(probe.sandbox.world("humio").records) == 3
    assert dropped() - before == 2


async def test_slack_one_message_per_run_naming_reasons_counts_and_keys(probe: Probe) -> None:
    seed_fs(probe.sandbox)
    report = await probe.run(probe.spec(humio=False))
    slack = probe.sandbox.world("slack")
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert probe.institution in text
    assert "*InvalidSourceData*: 1" in text and "*MissingResponsible*: 1" in text
    assert "NoCandidates" not in text  # skipped items are not notifiable
    failed_key = next(f.key for f in report.failures())
    assert failed_key in text
    assert f"kubectl get inst {probe.name} -o yaml -n {probe.namespace}" in text
    assert slack.messages[0]["blocks"]
    assert no_personal_data(slack.messages) == []
    assert "Course OBS" not in text  # titles and error messages stay out too

    # one more run, one more message: the broken record fails again; the test without a
    # responsible now exists unchanged, so MissingResponsible is no longer told
    await probe.run(probe.spec(humio=False))
    assert len(slack.messages) == 2
    assert "*InvalidSourceData*: 1" in slack.texts[1] and "MissingResponsible" not in slack.texts[1]


async def test_slack_suppressed_reasons_are_not_sent(probe: Probe) -> None:
    seed_fs(probe.sandbox)
    slack = probe.sandbox.world("slack")
    report = await probe.run(probe.spec(humio=False, suppress=("MissingResponsible", "InvalidSourceData")))
    assert reasons(report)["MissingResponsible"] == reasons(report)["InvalidSourceData"] == 1
    assert slack.messages == []  # every notifiable reason suppressed: nothing sent

    forget_inspera_tests(probe.sandbox)  # so MissingResponsible comes again
    report = await probe.run(probe.spec(humio=False, suppress=("MissingResponsible",)))
    assert reasons(report)["MissingResponsible"] == 1
    assert len(slack.messages) == 1
    assert "InvalidSourceData" in slack.texts[0] and "MissingResponsible" not in slack.texts[0]


async def test_slack_nothing_to_tell_sends_nothing(probe: Probe) -> None:
    seed_fs(probe.sandbox, failing=False, missing=False)
    report = await probe.run(probe.spec(humio=False))
    assert not report.failed
    assert report.pipelines["fs-inspera"].actions == {"created": 2, "skipped": 1}
    assert probe.sandbox.world("slack").messages == []


async def test_failing_webhook_does_not_change_the_run(probe: Probe) -> None:
    seed_fs(probe.sandbox, failing=False)
    probe.sandbox.server("slack").faults.error_rate = 1.0
    report = await probe.run(probe.spec(humio=False))
    assert not report.failed  # a MissingResponsible item only; the webhook answered 503 every time
    assert reasons(report)["MissingResponsible"] == 1  # so there was something to tell
    assert probe.sandbox.world("slack").messages == []
    assert probe.sandbox.server("slack").count("POST", "/services/") >= 1


async def test_fatal_source_failure_is_notified_once(probe: Probe) -> None:
    seed_fs(probe.sandbox)
    report = await probe.run(probe.spec(humio=False), probe.secrets(fs_password="wrong"))
    assert report.failed and report.is_stalled
    texts = probe.sandbox.world("slack").texts
    # the contract's reason for a whole source that could not be read, keyed by the pipeline
    assert len(texts) == 1 and "*UpstreamError*: 1" in texts[0] and "`fs-inspera`" in texts[0]


def test_build_sinks_refuses_a_plain_http_webhook_off_loopback(probe: Probe) -> None:
    spec = probe.spec()
    secrets = ResolvedSecrets(
        {
            "obs-slack": {"url": "http://hooks.slack.example/services/T/B/x"},
            "obs-humio": {"token": INGEST_TOKEN},
        }
    )
    sinks = build_sinks(spec, secrets, probe.institution)
    assert [type(s) for s in sinks] == [HumioSink]
    ok = ResolvedSecrets(
        {
            "obs-slack": {"url": "https://hooks.slack.example/services/T/B/x"},
            "obs-humio": {"token": INGEST_TOKEN},
        }
    )
    assert [type(s) for s in build_sinks(spec, ok, probe.institution)] == [HumioSink, SlackNotifier]
    refs = [(use.path, use.ref.name) for use in spec.secret_refs()]
    assert ("spec.notifications.slack.webhookSecretRef", "obs-slack") in refs
    assert ("spec.audit.humio.tokenSecretRef", "obs-humio") in refs
