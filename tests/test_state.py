"""The rules of durable progress on their own: the retry set's order and bound, the watermark it
holds back, and what bounding drops first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from examsync.state import MAX_RETRY, InstitutionState, PendingCreate, PipelineState, bounded

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=6)


def test_waiting_ids_keep_their_place_and_new_ones_fill_what_is_left() -> None:
    waiting = [f"w{n}" for n in range(MAX_RETRY - 2)]
    state = PipelineState(watermark=T0, retry=waiting)
    # new ids fail first in this run, the waiting ones after them; one waiting id succeeded
    failed = ["n1", "n2", "n3", *reversed(waiting[1:])]
    after = state.advance(T1, failed, listed_ok=True, relist_watermark=T0)
    assert after.retry == [*waiting[1:], "n1", "n2", "n3"]
    assert after.watermark == T1  # everything fitted: the watermark moves on

    after = state.advance(T1, ["n1", "n2", "n3", *waiting], listed_ok=True, relist_watermark=T0)
    assert after.retry == [*waiting, "n1", "n2"]  # n3 left out...
    assert after.watermark == T0  # ...so the watermark stays where this run's listing began


def test_a_first_run_leaving_ids_out_holds_the_watermark_at_its_own_listing() -> None:
    since = T1 - timedelta(hours=72) + timedelta(minutes=15)
    failed = [f"n{n}" for n in range(MAX_RETRY + 1)]
    after = PipelineState().advance(T1, failed, listed_ok=True, relist_watermark=since)
    assert after.retry == failed[:MAX_RETRY]
    assert after.watermark == since  # not None: the next run's lookback would start later


def test_bounding_drops_work_savers_then_markers_never_pending_or_retry() -> None:
    digests = {f"user-v2:{n:05d}": "d" * 40 for n in range(2000)}
    digests |= {f"assessor-v2:{n:05d}": "9001" for n in range(2000)}
    pending = {"A": PendingCreate(title="t", subtitle="s", since=T0)}
    retry = [f"id-{n}" for n in range(1000)]
    state = InstitutionState(
        pipelines={"p": PipelineState(watermark=T0, retry=retry, pending=pending, digests=digests)}
    )
    data = bounded(state, 50_000)
    assert len(json.dumps(data, separators=(",", ":"))) <= 50_000
    kept = data["pipelines"]["p"]
    assert kept["retry"] == retry and set(kept["pending"]) == {"A"} and kept["watermark"]
    assert not [k for k in kept["digests"] if k.startswith("user-v2:")]  # every work-saver went first
    markers = [k for k in kept["digests"] if k.startswith("assessor-v2:")]
    assert markers and markers[-1] == "assessor-v2:01999"  # then the oldest markers

    tiny = bounded(state, 1000)  # below what must stay: nothing that must stay is dropped
    assert tiny["pipelines"]["p"]["retry"] == retry and tiny["pipelines"]["p"]["digests"] == {}
