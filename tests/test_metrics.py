"""Metrics: names and labels, scrape-time conditions, forget, counters from a real sandbox run."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from examsync import metrics
from examsync.api.conditions import Condition, ConditionReason
from examsync.api.conditions import ConditionStatus as S
from examsync.api.conditions import ConditionType as T
from examsync.api.spec import parse_spec
from tests.support.metric_samples import sample_value
from tests.support.probe import CREATED, NO_RESPONSIBLE, PERSONAL, Probe, inspera_world, seed_fs

SPEC = parse_spec(
    {
        "shortName": "X",
        "interval": "10m",
        "fs": {
            "baseUrl": "https://fs.example",
            "institutionNumber": "1",
            "startYear": 2025,
            "credentialsSecretRef": {"name": "fs"},
        },
        "inspera": {
            "enabled": True,
            "baseUrl": "https://x.inspera.no/api",
            "clientId": "x",
            "credentialsSecretRef": {"name": "i"},
        },
    }
)


def exposition() -> str:
    return generate_latest(metrics.registry).decode()


def series_of(institution: str) -> list[str]:
    return [line for line in exposition().splitlines() if f'institution="{institution}"' in line]


def test_condition_gauge_is_computed_at_scrape_time_and_forgotten() -> None:
    inst = f"obs/cond-{uuid.uuid4().hex[:6]}"
    metrics.set_view(
        inst,
        [
            Condition(type=T.READY, status=S.FALSE),
            Condition(type=T.STALLED, status=S.TRUE),
            Condition(type=T.RECONCILING, status=S.UNKNOWN),  # an unreadable status is not loaded at all
        ],
        suspended=True,
        interval_seconds=600,
    )
    ready_false = {"institution": inst, "type": "Ready", "status": "False"}
    assert sample_value("examsync_institution_condition", ready_false) == 1.0
    assert sample_value("examsync_institution_condition", {**ready_false, "status": "True"}) == 0.0
    assert (
        sample_value(
            "examsync_institution_condition",
            {"institution": inst, "type": "Reconciling", "status": "Unknown"},
        )
        == 1.0
    )
    assert sample_value("examsync_suspended", {"institution": inst}) == 1.0
    assert sample_value("examsync_interval_seconds", {"institution": inst}) == 600.0

    # the view changes: the next scrape shows the new value, no stale series
    metrics.set_view(inst, [Condition(type=T.READY, status=S.TRUE)], suspended=False, interval_seconds=600)
    assert sample_value("examsync_institution_condition", ready_false) == 0.0
    assert (
        sample_value("examsync_institution_condition", {"institution": inst, "type": "Stalled", "status": "True"})
        is None
    )

    metrics.forget(inst)
    assert series_of(inst) == []
    assert inst not in metrics.institutions()


def test_forget_drops_every_series_of_a_run(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from examsync.domain.outcomes import Action, FsCounts, ItemResult, Reason
    from examsync.report import InstitutionReport, PipelineReport

    inst = f"obs/forget-{uuid.uuid4().hex[:6]}"
    other = f"obs/keep-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    for name in (inst, other):
        report = InstitutionReport(name=name.split("/")[1], namespace="obs", mode="Apply", run_id="r1", started=now)
        pipeline = PipelineReport(name="fs-inspera", counts=FsCounts(), started=now)
        pipeline.add(ItemResult("fs-inspera:a", "a", Action.CREATED, Reason.MISSING_RESPONSIBLE), now)
        pipeline.add(ItemResult("fs-inspera:b", "b", Action.UNCHANGED), now)
        report.pipelines = {"fs-inspera": pipeline}
        metrics.record_run(name, report, SPEC)
        metrics.set_view(name, [Condition(type=T.READY, status=S.TRUE)], False, 600)
    labels = {"institution": inst, "pipeline": "fs-inspera"}
    assert sample_value("examsync_items_total", {**labels, "action": "unchanged", "reason": ""}) == 1.0
    assert sample_value("examsync_missing_responsible", labels) == 1.0
    assert sample_value("examsync_runs_total", {**labels, "result": "succeeded"}) == 1.0
    assert sample_value("examsync_runs_total", {**labels, "result": "failed"}) == 0.0
    assert sample_value("examsync_last_success_timestamp_seconds", labels) is not None
    assert len(series_of(inst)) > 8

    metrics.forget(inst)
    assert series_of(inst) == []
    assert series_of(other)  # another Institution keeps its series
    metrics.forget(other)


async def test_items_counters_move_after_a_sandbox_run(probe: Probe) -> None:
    fs_ids = seed_fs(probe.sandbox)
    inspera = inspera_world(probe.sandbox)
    labels = {"institution": probe.institution, "pipeline": "fs-inspera"}

    def items(action: str, reason: str) -> float:
        return sample_value("examsync_items_total", {**labels, "action": action, "reason": reason}) or 0.0

    before_fs = (
        sample_value("examsync_upstream_requests_total", {"system": "fs", "operation": "get", "code": "200"}) or 0.0
    )
    report = await probe.run(probe.spec(slack=False, humio=False))
    metrics.record_run(probe.institution, report, probe.spec())

    assert report.failed  # one record lacks its start
    assert items("created", "") == 2
    assert items("created", "MissingResponsible") == 1
    assert items("skipped", "NoCandidates") == 1
    assert items("failed", "InvalidSourceData") == 1
    assert sample_value("examsync_runs_total", {**labels, "result": "failed"}) == 1.0
    assert sample_value("examsync_missing_responsible", labels) == 1.0
    assert sample_value("examsync_last_success_timestamp_seconds", labels) is None
    assert sample_value("examsync_run_duration_seconds_count", labels) == 1.0
    assert sample_value("examsync_interval_seconds", {"institution": probe.institution}) == 300.0
    after_fs = (
        sample_value("examsync_upstream_requests_total", {"system": "fs", "operation": "get", "code": "200"}) or 0.0
    )
    assert after_fs - before_fs == 5  # each listed record read once, over HTTP
    # the creates are real: one Inspera test per created item, the responsible as contributor
    assert inspera.writes["create"] == 3
    for code in CREATED:
        (test,) = inspera.by_external_id(fs_ids[code])
        assert test["contributors"]
    (orphan,) = inspera.by_external_id(fs_ids[NO_RESPONSIBLE])
    assert "contributors" not in orphan

    # a second run adds to the counters (no state passed: FS lists everything again), and
    # finds the tests the first run made: unchanged, not created twice
    report = await probe.run(probe.spec(slack=False, humio=False))
    metrics.record_run(probe.institution, report, probe.spec())
    assert items("created", "") == 2
    assert items("created", "MissingResponsible") == 1
    assert items("unchanged", "") == 3
    assert items("failed", "InvalidSourceData") == 2
    assert sample_value("examsync_runs_total", {**labels, "result": "failed"}) == 2.0
    assert sample_value("examsync_missing_responsible", labels) == 0.0  # nothing written this run
    assert inspera.writes["create"] == 3 and not inspera.writes["update"]

    text = exposition()
    assert not [p for p in PERSONAL if p in text]
    metrics.forget(probe.institution)


def test_run_that_could_not_start_counts_each_pipeline_failed() -> None:
    from datetime import UTC, datetime

    from examsync.report import InstitutionReport

    inst = f"obs/nostart-{uuid.uuid4().hex[:6]}"
    report = InstitutionReport(
        name="x",
        namespace="obs",
        mode="Apply",
        run_id="r",
        started=datetime.now(UTC),
        error="spec.fs.credentialsSecretRef: Secret 'fs' not found",
        error_reason=ConditionReason.SECRET_MISSING,
        stalled=True,
    )
    metrics.record_run(inst, report, SPEC)
    assert (
        sample_value("examsync_runs_total", {"institution": inst, "pipeline": "fs-inspera", "result": "failed"}) == 1.0
    )
    assert metrics.conditions_for(report) == [
        Condition(type=T.READY, status=S.FALSE),
        Condition(type=T.STALLED, status=S.TRUE),
    ]
    metrics.forget(inst)


def test_textfile_is_written_whole(tmp_path: Path) -> None:
    inst = f"obs/text-{uuid.uuid4().hex[:6]}"
    metrics.set_view(inst, [Condition(type=T.READY, status=S.TRUE)], False, 60)
    target = tmp_path / "examsync.prom"
    metrics.write_textfile(target)
    names = {family.name for family in text_string_to_metric_families(target.read_text())}
    assert {"examsync_institution_condition", "examsync_build_info", "examsync_suspended"} <= names
    assert [p.name for p in tmp_path.iterdir()] == ["examsync.prom"]  # no temp file left behind
    # node-exporter exports process_* itself: the textfile must hold only our own names
    assert all(name.startswith("examsync_") for name in names)
    metrics.forget(inst)


NO_PROMTOOL = "promtool not installed (scripts/tools/promtool.sh installs it)"


@pytest.mark.skipif(shutil.which("promtool") is None, reason=NO_PROMTOOL)
async def test_exposition_passes_promtool_check_metrics(probe: Probe) -> None:
    seed_fs(probe.sandbox)
    report = await probe.run(probe.spec(slack=False, humio=False))
    metrics.record_run(probe.institution, report, probe.spec())
    metrics.set_view(probe.institution, metrics.conditions_for(report), False, 300)
    metrics.AUDIT_DROPPED.labels("humio").inc(0)
    text = exposition()
    assert "examsync_items_total{" in text and "examsync_institution_condition{" in text
    result = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr
    metrics.forget(probe.institution)
