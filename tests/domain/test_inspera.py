"""The desired Inspera test for an FS assessment, and the diff against an existing test."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from examsync.domain.fs import Assessment, parse_assessment
from examsync.domain.inspera import (
    MANAGED_FIELDS,
    changed_fields,
    desired_test,
    is_linked,
    sanitize_title,
    to_utc,
)
from tests.support.fs_inspera_runs import FORBIDDEN_FIELDS

FS_ID = "MTg1fHxJTkYxMDAwfHwxfHxTS1J8fDIwMjZ8fEjDmFNU"


def assessment(**over: Any) -> Assessment:
    data: dict[str, Any] = {
        "id": FS_ID,
        "institusjonsnr": "185",
        "emnekode": "INF1000",
        "versjonskode": "1",
        "vurdkombkode": "SKR",
        "arstall": 2026,
        "vurdtidkode": "HØST",
        "vurdtidkodeReell": "VÅR",
        "emnetittel": "Introduksjon til programmering",
        "vurderingsform": "SKRIFTLIG",
        "start": "2026-12-01T09:00:00+01:00",
        "slutt": "2026-12-01T13:00:00+01:00",
        "varighetMinutter": 240,
        "sensurfrist": "2026-12-22",
        "kandidater": [{"kandidatnummer": 1, "navn": "Kari Nordmann", "fodselsnummer": "01019012345"}],
        "kommisjoner": [{"kommisjonsnr": 1, "sensorer": [{"navn": "Per Sensor"}]}],
    }
    data.update(over)
    return parse_assessment(data)


def test_body_matches_contract_example() -> None:
    assert desired_test(assessment(), [123]) == {
        "externalTestId": FS_ID,
        "variant": "SKR",
        "title": "Introduksjon til programmering",
        "startTime": "2026-12-01T08:00:00Z",
        "endTime": "2026-12-01T12:00:00Z",
        "duration": 240,
        "externalTest": True,
        "externalSystem": "FS",
        "authenticationSystem": "FEIDE",
        "subjectCode": "INF1000",
        "versionCode": "1",
        "evaluationType": "SKRIFTLIG",
        "timeframeCode": "VÅR",
        "institution": "185",
        "gradingDueDate": "2026-12-22",
        "contributors": [{"userId": 123, "role": "MAIN_RESPONSIBLE"}],
    }


def test_body_never_holds_people() -> None:
    body = desired_test(assessment(), [1, 2])
    assert not FORBIDDEN_FIELDS & set(body)
    assert "Kari" not in repr(body) and "01019012345" not in repr(body)
    assert list(body) == [f for f in MANAGED_FIELDS if f in body]


def test_no_contributors_found_leaves_the_field_out() -> None:
    assert "contributors" not in desired_test(assessment(), [])


def test_dst_change_inside_the_exam() -> None:
    body = desired_test(
        assessment(start="2026-10-25T01:30:00+02:00", slutt="2026-10-25T03:30:00+01:00", varighetMinutter=None), []
    )
    assert (body["startTime"], body["endTime"], body["duration"]) == (
        "2026-10-24T23:30:00Z",
        "2026-10-25T02:30:00Z",
        180,
    )


def test_end_from_duration_when_fs_gives_no_end() -> None:
    body = desired_test(assessment(slutt=None, varighetMinutter=90), [])
    assert body["endTime"] == "2026-12-01T09:30:00Z"


def test_neither_end_nor_duration() -> None:
    body = desired_test(assessment(slutt=None, varighetMinutter=None, sensurfrist=None), [])
    assert "endTime" not in body and "duration" not in body and "gradingDueDate" not in body


def test_title_falls_back_to_course_code() -> None:
    assert desired_test(assessment(emnetittel=None), [])["title"] == "INF1000"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Historie [1750-1900]", "Historie 1750-1900"),
        ("[[Tom]]", "Tom"),
        ("  Mange   mellomrom ", "Mange mellomrom"),
        ("x" * 600, "x" * 500),
    ],
)
def test_sanitize_title(raw: str, clean: str) -> None:
    assert sanitize_title(raw) == clean


@given(st.text())
def test_sanitized_titles_respect_inspera_limits(raw: str) -> None:
    title = sanitize_title(raw)
    assert "[" not in title and "]" not in title and len(title) <= 500


def test_to_utc_uses_the_given_offset() -> None:
    from datetime import datetime, timedelta, timezone

    assert to_utc(datetime(2026, 6, 1, 9, tzinfo=timezone(timedelta(hours=2)))) == "2026-06-01T07:00:00Z"
    with pytest.raises(ValueError, match="offset"):
        to_utc(datetime(2026, 6, 1, 9))


def existing(**over: Any) -> dict[str, Any]:
    test = {
        **desired_test(assessment(), [123]),
        "assessmentRunId": 42,
        "status": "created",
        "externalTestInfo": {"externalTest": True, "externalSystem": "FS", "externalTestId": FS_ID},
    }
    test.update(over)
    return test


def test_identical_test_has_no_changes() -> None:
    assert changed_fields(desired_test(assessment(), [123]), existing()) == []


def test_equivalent_representations_are_not_changes() -> None:
    have = existing(
        startTime="2026-12-01T09:00:00.000+01:00",
        endTime="2026-12-01T12:00:00.000Z",
        institution=185,
        versionCode=1,
        contributors=[{"userId": 123, "role": "MAIN_RESPONSIBLE"}, {"userId": 9, "role": "GRADER"}],
    )
    assert changed_fields(desired_test(assessment(), [123]), have) == []


def test_exactly_the_differing_fields() -> None:
    have = existing(title="Gammel tittel", duration=180, contributors=[])
    assert changed_fields(desired_test(assessment(), [123]), have) == ["title", "duration", "contributors"]


def test_contributor_order_matters() -> None:
    have = existing(contributors=[{"userId": 2, "role": "MAIN_RESPONSIBLE"}, {"userId": 1, "role": "MAIN_RESPONSIBLE"}])
    assert changed_fields(desired_test(assessment(), [1, 2]), have) == ["contributors"]


def test_missing_field_on_existing_is_a_change() -> None:
    have = existing()
    del have["gradingDueDate"]
    assert changed_fields(desired_test(assessment(), [123]), have) == ["gradingDueDate"]


def test_unmanaged_contributors_when_none_found() -> None:
    have = existing(contributors=[{"userId": 5, "role": "MAIN_RESPONSIBLE"}])
    assert changed_fields(desired_test(assessment(), []), have) == []


def test_linked_unless_explicitly_disconnected() -> None:
    assert is_linked(existing())
    assert not is_linked(existing(externalTestInfo={"externalTest": False}))
    assert is_linked({"assessmentRunId": 1})


def test_link_reported_only_in_external_test_info_is_not_a_change() -> None:
    have = existing()
    for name in ("externalTestId", "externalTest", "externalSystem"):
        del have[name]
    assert changed_fields(desired_test(assessment(), [123]), have) == []
    have["externalTestInfo"]["externalTestId"] = "another"
    assert changed_fields(desired_test(assessment(), [123]), have) == ["externalTestId"]
