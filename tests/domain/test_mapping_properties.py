"""Properties of the FS → Inspera mapping (domain/fs.py, domain/inspera.py) over generated input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examsync.domain.fs import Assessment, InvalidSourceData, decode_id, encode_id, ineligible_reason, parse_assessment
from examsync.domain.inspera import TITLE_MAX, changed_fields, desired_test, sanitize_title
from examsync.domain.outcomes import Reason
from tests.support.fs_inspera_runs import FORBIDDEN_FIELDS

OSLO = ZoneInfo("Europe/Oslo")
REQUIRED_BODY = {
    "externalTestId",
    "title",
    "startTime",
    "externalTest",
    "externalSystem",
    "authenticationSystem",
    "subjectCode",
}
OPTIONAL = (
    "institusjonsnr",
    "versjonskode",
    "vurdkombkode",
    "arstall",
    "vurdtidkode",
    "vurdtidkodeReell",
    "emnetittel",
    "vurderingsform",
    "eksamenssystem",
    "sensursystem",
    "begrunnelsessystem",
    "stedkode",
    "slutt",
    "varighetMinutter",
    "sensurfrist",
    "sistEndret",
    "eksamensansvarlige",
    "kandidater",
    "kommisjoner",
)
FS_ID = encode_id("185", "INF1000", versjonskode="1", vurdkombkode="SKR", arstall=2026, vurdtidkode="HØST")


def record(start: datetime, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": FS_ID,
        "institusjonsnr": "185",
        "emnekode": "INF1000",
        "versjonskode": "1",
        "vurdkombkode": "SKR",
        "arstall": 2026,
        "vurdtidkode": "HØST",
        "vurdtidkodeReell": "HØST",
        "emnetittel": "Introduksjon til programmering",
        "vurderingsform": "SKRIFTLIG",
        "eksamenssystem": "INSPERA",
        "stedkode": "185_15_10_0",
        "start": start.isoformat(),
        "varighetMinutter": 240,
        "sensurfrist": "2026-12-22",
        "eksamensansvarlige": [{"feideId": "ola@uio.no"}],
        "kandidater": [{"kandidatnummer": 1}],
    }
    base.update(fields)
    return base


def utc(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00")


def last_sunday(year: int, month: int) -> date:
    day = date(year, month, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


@st.composite
def around_dst(draw: st.DrawFn) -> datetime:
    """An Oslo local time within a day of a daylight-saving change (gaps and folds included)."""
    year = draw(st.integers(2025, 2032))
    change = last_sunday(year, draw(st.sampled_from([3, 10])))
    moment = datetime(change.year, change.month, change.day) + timedelta(minutes=draw(st.integers(-24 * 60, 24 * 60)))
    return moment.replace(tzinfo=OSLO, fold=draw(st.integers(0, 1)))


@given(start=around_dst(), minutes=st.integers(1, 24 * 60), with_end=st.booleans())
def test_times_around_dst_become_the_same_instant_in_utc(start: datetime, minutes: int, with_end: bool) -> None:
    # the FS text carries the offset (+01:00 or +02:00); the UTC result is that very instant
    start_text = start.isoformat()
    assert start_text.endswith(("+01:00", "+02:00"))
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(OSLO)
    fields: dict[str, Any] = (
        {"slutt": end.isoformat(), "varighetMinutter": None} if with_end else {"varighetMinutter": minutes}
    )
    body = desired_test(parse_assessment(record(start, **fields)), [])
    assert utc(body["startTime"]) == datetime.fromisoformat(start_text)
    assert utc(body["endTime"]) - utc(body["startTime"]) == timedelta(minutes=minutes)
    assert body["duration"] == minutes


@given(
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offset=st.integers(-14 * 60, 14 * 60),
)
def test_any_offset_converts_by_the_offset_itself(start: datetime, offset: int) -> None:
    from datetime import timezone

    aware = start.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    body = desired_test(parse_assessment(record(aware)), [])
    assert utc(body["startTime"]) == aware


@given(title=st.text())
def test_titles_lose_brackets_and_stay_within_the_limit(title: str) -> None:
    cleaned = sanitize_title(title)
    assert "[" not in cleaned and "]" not in cleaned
    assert len(cleaned) <= TITLE_MAX
    assert sanitize_title(cleaned) == cleaned
    if len(title) <= TITLE_MAX and not set(title) & {"[", "]"} and title == " ".join(title.split()):
        assert cleaned == title


@given(
    title=st.text(alphabet=st.characters(codec="utf-8"), min_size=400, max_size=2000)
    | st.text(alphabet="[]æøåÆØÅ ü漢🙂\u0301", max_size=800)
)
def test_the_body_title_obeys_inspera_limits(title: str) -> None:
    body = desired_test(parse_assessment(record(datetime(2026, 12, 1, 9, tzinfo=OSLO), emnetittel=title)), [])
    assert "[" not in body["title"] and "]" not in body["title"]
    assert len(body["title"]) <= TITLE_MAX


@given(title=st.text(alphabet="[] \t\n", min_size=1, max_size=20))
def test_a_title_that_is_only_brackets_falls_back_to_the_subject_code(title: str) -> None:
    body = desired_test(parse_assessment(record(datetime(2026, 12, 1, 9, tzinfo=OSLO), emnetittel=title)), [])
    assert body["title"] == "INF1000"


@given(
    drop=st.sets(st.sampled_from(OPTIONAL)),
    null=st.sets(st.sampled_from(OPTIONAL)),
    contributors=st.lists(st.integers(1, 10**9), max_size=5, unique=True),
)
def test_missing_optional_fields_still_give_a_valid_body(
    drop: set[str], null: set[str], contributors: list[int]
) -> None:
    data = record(datetime(2026, 12, 1, 9, tzinfo=OSLO))
    for name in drop:
        data.pop(name, None)
    for name in null - drop:
        data[name] = None
    a = parse_assessment(data)
    body = desired_test(a, contributors)
    assert set(body) >= REQUIRED_BODY
    assert None not in body.values()
    assert not FORBIDDEN_FIELDS & set(body)
    assert [c["userId"] for c in body.get("contributors", [])] == contributors
    # what was written reads back as unchanged: a re-run does not update forever
    assert changed_fields(body, dict(body)) == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 50_000))
def test_huge_candidate_lists_are_counted_never_sent(n: int) -> None:
    a = parse_assessment(record(datetime(2026, 12, 1, 9, tzinfo=OSLO), kandidater=[{"kandidatnummer": 1}] * n))
    assert a.candidate_count == n
    assert ineligible_reason(a, 2025, []) == (Reason.NO_CANDIDATES if n == 0 else None)
    body = desired_test(a, [7])
    assert not FORBIDDEN_FIELDS & set(body)
    assert all(not isinstance(v, list) or len(v) <= 1 for v in body.values())


@pytest.mark.parametrize("over", [{"varighetMinutter": 10**12}, {"start": "9999-12-31T23:59:00-14:00"}])
def test_times_the_mapping_cannot_compute_are_invalid_source_data(over: dict[str, Any]) -> None:
    data = {**record(datetime(2026, 12, 1, 9, tzinfo=OSLO)), **over}
    try:
        a = parse_assessment(data)
    except InvalidSourceData:
        return
    desired_test(a, [])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ("id", "emnekode", "start", *OPTIONAL)
# in range for the mapping (the out-of-range cases are rejected, see the test above)
TIMES = st.sampled_from(
    [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-03-29T02:30:00",
        "not a time",
        "2026-13-01T00:00:00Z",
        "2100-12-31T23:59:00-14:00",
    ]
)
JSONISH = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional={name: JSON | TIMES for name in FIELDS}),
    st.builds(
        lambda over: {**record(datetime(2026, 12, 1, 9, tzinfo=OSLO)), **over},
        st.dictionaries(st.sampled_from(FIELDS), JSON | TIMES | st.integers(-(10**5), 10**5), max_size=4),
    ),
)


@settings(max_examples=400)
@given(data=JSONISH)
def test_parsing_raises_only_invalid_source_data(data: Any) -> None:
    try:
        a = parse_assessment(data)
    except InvalidSourceData as exc:
        assert "record" in str(exc) or "field" in str(exc)
        return
    assert isinstance(a, Assessment)
    assert a.id and a.emnekode and a.start.utcoffset() is not None


@settings(max_examples=400)
@given(
    data=JSONISH.filter(
        lambda d: (
            not isinstance(d, dict)
            or all(not isinstance(d.get(k), int) or abs(d[k]) < 10**6 for k in ("varighetMinutter",))
        )
    )
)
def test_a_parsed_assessment_always_maps_to_a_body(data: Any) -> None:
    try:
        a = parse_assessment(data)
    except InvalidSourceData:
        return
    body = desired_test(a, [])
    assert body["externalTestId"] == a.id


@given(text=st.text())
def test_decoding_any_id_never_raises(text: str) -> None:
    decoded = decode_id(text)
    assert decoded is None or isinstance(decoded, str)
