"""The pure WISEflow rules."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from examsync.domain.fs import parse_assessment
from examsync.domain.wiseflow import (
    REFERENCE_MAX_LENGTH,
    REFERENCE_PATTERN,
    Assessor,
    FlowState,
    FoundFlow,
    SourceState,
    Supervisor,
    Window,
    assessor_key,
    assessors_to_remove,
    body_digest,
    dates_diff,
    desired_flow,
    fs_reference,
    marking_end,
    metadata_diff,
    pending_matches,
    period_of,
    pp_reference,
    source_told,
    supervisor_problem,
    user_body,
    user_key,
)

OSLO = ZoneInfo("Europe/Oslo")
REFERENCE_ALPHABET = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_")


def is_reference(text: str) -> bool:
    """Whether WISEflow accepts `text` as an external source reference (its spec's pattern and length)."""
    return len(text) <= REFERENCE_MAX_LENGTH and re.fullmatch(REFERENCE_PATTERN, text) is not None


def test_reference_is_url_safe_base64_of_the_same_bytes() -> None:
    fs_id = base64.b64encode("185||INF1000||1||SKR||2026||HØST".encode()).decode()
    ref = fs_reference("ab+/cd==")
    assert ref == "fs-ab-_cd"
    assert fs_reference(fs_id)[3:] == base64.urlsafe_b64encode(base64.b64decode(fs_id)).decode().rstrip("=")


@given(st.binary(min_size=1, max_size=80))
def test_reference_holds_the_same_bytes_and_fits_the_pattern(raw: bytes) -> None:
    ref = fs_reference(base64.b64encode(raw).decode())
    assert set(ref) <= REFERENCE_ALPHABET and is_reference(ref)
    body = ref.removeprefix("fs-")
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == raw


def test_marking_end_is_oslo_end_of_day_across_dst() -> None:
    assert datetime.fromtimestamp(marking_end(date(2026, 12, 22)), UTC) == datetime(
        2026, 12, 22, 22, 59, 59, tzinfo=UTC
    )
    assert datetime.fromtimestamp(marking_end(date(2026, 6, 22)), UTC) == datetime(2026, 6, 22, 21, 59, 59, tzinfo=UTC)


def _record(**changes: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "id": "MTg1fHxJTkYxMDAwfHwxfHxTS1J8fDIwMjZ8fEjDmFNU",
        "emnekode": "INF1000",
        "emnetittel": "Introduksjon",
        "start": "2026-10-25T01:30:00+02:00",
        "slutt": "2026-10-25T03:30:00+01:00",
        "sensurfrist": "2026-11-15",
        "kandidater": [{}],
    }
    rec.update(changes)
    return rec


def test_desired_flow_converts_by_offset_not_by_assumed_zone() -> None:
    d = desired_flow(parse_assessment(_record()))
    assert d.title == "Introduksjon" and d.subtitle == "INF1000"
    assert d.participation.end - d.participation.start == 3 * 3600  # the DST night lasts an hour more
    assert d.marking is not None and d.marking.start == d.participation.end


def test_desired_flow_falls_back_for_missing_fields() -> None:
    d = desired_flow(parse_assessment(_record(slutt=None, varighetMinutter=90, sensurfrist=None, emnetittel=None)))
    assert d.title == "INF1000"
    assert d.participation.end - d.participation.start == 5400
    assert d.marking is None
    assert d.windows() == (d.participation, None)


def _found(**changes: object) -> FoundFlow:
    d = desired_flow(parse_assessment(_record()))
    values: dict[str, object] = {
        "flow_id": 5,
        "title": d.title,
        "subtitle": d.subtitle,
        "state": FlowState.ACTIVATED,
        "references": (),
        "created_at": None,
        "participation": d.participation,
        "marking": d.marking,
    }
    values.update(changes)
    return FoundFlow(**values)  # type: ignore[arg-type]


def test_diffs_name_wiseflow_fields() -> None:
    d = desired_flow(parse_assessment(_record()))
    same = _found()
    assert metadata_diff(d, same) == [] and dates_diff(d, same) == []
    assert d.marking is not None
    other = _found(subtitle="X", marking=Window(d.marking.start, 0))
    assert metadata_diff(d, other) == ["subtitle"] and dates_diff(d, other) == ["marking"]
    # a flow whose dates were never set (the search answers no pair) gets both
    assert dates_diff(d, _found(participation=None, marking=None)) == ["participation", "marking"]
    assert d.windows(["marking"]) == (None, d.marking)


def test_pending_matches_title_subtitle_creation_time_state_and_no_fs_link() -> None:
    since = datetime(2026, 11, 1, 12, tzinfo=UTC)
    created = int(since.timestamp()) + 2
    flow = _found(title="T", subtitle="S", created_at=created, state=FlowState.NOT_ACTIVATED)
    assert pending_matches(flow, "T", "S", since)
    assert not pending_matches(flow, "T", "other", since)
    assert not pending_matches(_found(title="T (copy)", subtitle="S", created_at=created), "T", "S", since)
    old = _found(title="T", subtitle="S", created_at=int((since - timedelta(hours=1)).timestamp()))
    assert not pending_matches(old, "T", "S", since)
    # within the clock skew allowed between this host and WISEflow
    skewed = _found(title="T", subtitle="S", created_at=int(since.timestamp()) - 30)
    assert pending_matches(skewed, "T", "S", since)
    linked = _found(title="T", subtitle="S", created_at=created, references=("fs-abc",))
    assert not pending_matches(linked, "T", "S", since)
    other_source = _found(title="T", subtitle="S", created_at=created, references=("praktikportalen-1",))
    assert pending_matches(other_source, "T", "S", since)
    closed = _found(title="T", subtitle="S", created_at=created, state=FlowState.ARCHIVED)
    assert not pending_matches(closed, "T", "S", since)
    # no creation time in the answer: the search's createdAt filter already chose it
    assert pending_matches(_found(title="T", subtitle="S", created_at=None), "T", "S", since)


def test_supervisor_problems_by_position_and_no_value_leaks() -> None:
    s = Supervisor(praktikportalId="TS-1", firstName="Mette", email=None)
    assert supervisor_problem(s, 3, 12) == "supervisor 3 of 12 has no e-mail"
    assert supervisor_problem(Supervisor(email="a@b.dk"), 1, 2) == "supervisor 1 of 2 has no praktikportal id"
    assert supervisor_problem(Supervisor(praktikportalId="TS-1", email="a@b.dk"), 1, 1) is None


SECRET = b"institution-secret"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_user_key_and_digest_are_keyed_hashes() -> None:
    key = user_key(SECRET, "LIC", 9, "TS-10023")
    assert "TS-10023" not in key and key == user_key(SECRET, "LIC", 9, "TS-10023")
    assert key != user_key(SECRET, "LIC", 9, "TS-2")
    # keyed: another secret gives another key, and a plain hash of a guessed id finds nothing
    assert key != user_key(b"other", "LIC", 9, "TS-10023")
    assert _sha256("LIC\x1f9\x1fTS-10023")[:40] not in key
    s = Supervisor(praktikportalId="TS-10023", firstName="Mette", lastName="Holm", email="m@h.dk")
    body = user_body(s, 4, 9)
    assert body["externalIds"] == [{"userDataTypeId": 9, "value": "TS-10023"}] and body["roles"] == [4]
    digest = body_digest(SECRET, body)
    assert "Mette" not in digest and digest != body_digest(SECRET, {**body, "emails": ["x@h.dk"]})
    assert digest != body_digest(b"other", body)
    assert digest != _sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    marker = assessor_key(SECRET, 7, 11)
    assert marker != assessor_key(b"other", 7, 11) and _sha256("7\x1f11")[:40] not in marker


def test_assessor_decisions() -> None:
    assessors = [
        Assessor(assessor_id=1, user_id=10),
        Assessor(assessor_id=2, user_id=11),
        Assessor(assessor_id=3, user_id=12),
    ]
    ours = {11, 12}
    # not activated: only ours, only those who left the period
    assert [a.assessor_id for a in assessors_to_remove(FlowState.NOT_ACTIVATED, assessors, {12}, ours)] == [2]
    # an activated flow never loses an assessor
    for state in FlowState:
        if state is not FlowState.NOT_ACTIVATED:
            assert assessors_to_remove(state, assessors, set(), ours) == []
    # nobody this integration did not add
    assert assessors_to_remove(FlowState.NOT_ACTIVATED, assessors, set(), set()) == []


def test_period_reference_fits_the_reference_pattern() -> None:
    assert pp_reference("4711") == "praktikportalen-4711" and is_reference(pp_reference("4711"))
    assert period_of("praktikportalen-4711") == "4711"
    assert period_of("praktikportalen-") is None
    assert period_of("fs-abc") is None
    # the earlier form is still read (never written: WISEflow refuses `:`)
    assert period_of("praktikportalen:4711") == "4711" and not is_reference("praktikportalen:4711")


def test_source_outcome_is_reported_only_when_it_changes() -> None:
    assert source_told(SourceState.SUCCESS, ok=True) and not source_told(SourceState.FAILED, ok=True)
    assert source_told(SourceState.FAILED, ok=False) and not source_told(SourceState.SUCCESS, ok=False)
    # a sync a manager requested, or a source never reported: told again
    for state in (SourceState.PENDING, SourceState.NONE, None):
        assert not source_told(state, ok=True) and not source_told(state, ok=False)
