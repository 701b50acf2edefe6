"""The series status gives, set from an Institution's status when the operator first sees it."""

from __future__ import annotations

import uuid
from typing import Any

from examsync import metrics
from examsync.api.conditions import Condition, ConditionStatus, ConditionType
from examsync.kube import restore
from tests.support.metric_samples import sample_value


def body(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "x", "namespace": "obs", "generation": 3},
        "spec": {"suspend": True, "interval": "2h", "shortName": "X"},  # not a valid spec: pipelines from status
        "status": status,
    }


def test_series_follow_status_and_are_forgotten() -> None:
    inst = f"obs/restore-{uuid.uuid4().hex[:6]}"
    done = restore.from_status(
        inst,
        body(
            conditions=[{"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "True"}],
            lastSuccessTime="2026-11-23T06:00:02Z",
            pipelines={"fs-inspera": {"missingResponsible": 2}, "praktikportalen-wiseflow": {"flows": 1}},
        ),
    )
    assert done
    assert (
        sample_value("examsync_institution_condition", {"institution": inst, "type": "Ready", "status": "False"}) == 1.0
    )
    assert (
        sample_value("examsync_institution_condition", {"institution": inst, "type": "Stalled", "status": "True"})
        == 1.0
    )
    assert sample_value("examsync_suspended", {"institution": inst}) == 1.0
    assert sample_value("examsync_interval_seconds", {"institution": inst}) == 7200.0
    for pipeline in ("fs-inspera", "praktikportalen-wiseflow"):
        labels = {"institution": inst, "pipeline": pipeline}
        assert sample_value("examsync_last_success_timestamp_seconds", labels) == 1795413602.0
        assert sample_value("examsync_runs_total", {**labels, "result": "failed"}) == 0.0
    assert sample_value("examsync_missing_responsible", {"institution": inst, "pipeline": "fs-inspera"}) == 2.0
    assert (
        sample_value("examsync_missing_responsible", {"institution": inst, "pipeline": "praktikportalen-wiseflow"})
        == 0.0
    )

    metrics.forget(inst)
    assert inst not in metrics.institutions()


def test_a_process_that_knows_the_institution_keeps_its_own_series() -> None:
    inst = f"obs/restore-{uuid.uuid4().hex[:6]}"
    ready = Condition(type=ConditionType.READY, status=ConditionStatus.TRUE)
    metrics.set_view(inst, [ready], suspended=False, interval_seconds=60)
    assert not restore.from_status(inst, body(conditions=[{"type": "Ready", "status": "False"}]))
    assert (
        sample_value("examsync_institution_condition", {"institution": inst, "type": "Ready", "status": "True"}) == 1.0
    )
    metrics.forget(inst)


def test_no_status_no_series() -> None:
    inst = f"obs/restore-{uuid.uuid4().hex[:6]}"
    assert not restore.from_status(inst, {"spec": {}})
    assert not restore.from_status(inst, {"spec": {}, "status": {}})
    assert inst not in metrics.institutions()
