"""FS domain rules: parsing a detail record, the id, and which assessments are in scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examsync.domain.fs import InvalidSourceData, decode_id, encode_id, ineligible_reason, parse_assessment
from examsync.domain.outcomes import Reason

FS_ID = "MTg1fHxJTkYxMDAwfHwxfHxTS1J8fDIwMjZ8fEjDmFNU"


def record(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
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
        "start": "2026-12-01T09:00:00+01:00",
        "slutt": "2026-12-01T13:00:00+01:00",
        "varighetMinutter": 240,
        "sensurfrist": "2026-12-22",
        "eksamensansvarlige": [{"feideId": "ola@uio.no", "navn": "Ola Nordmann"}, {"navn": "Uten Feide"}],
        "kandidater": [{"kandidatnummer": 101}, {"kandidatnummer": 102}],
        "kommisjoner": [{"kommisjonsnr": 1, "sensorer": []}],
    }
    data.update(over)
    return data


def test_contract_example_parses_with_counts_only_for_people() -> None:
    a = parse_assessment(record())
    assert a.id == FS_ID and a.emnekode == "INF1000" and a.arstall == 2026
    assert a.start == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert a.responsibles == ("ola@uio.no",) and a.responsibles_listed == 2
    assert a.candidate_count == 2


def test_decode_id_matches_contract_example() -> None:
    assert decode_id(FS_ID) == "185||INF1000||1||SKR||2026||HØST"
    assert encode_id("185", "INF1000", versjonskode="1", vurdkombkode="SKR", arstall=2026, vurdtidkode="HØST") == FS_ID
    assert decode_id("not base64!") is None


@pytest.mark.parametrize("missing", ["start", "emnekode", "id"])
def test_missing_required_field_is_named_without_values(missing: str) -> None:
    data = record()
    del data[missing]
    with pytest.raises(InvalidSourceData) as err:
        parse_assessment(data)
    assert missing in str(err.value)
    assert "INF1000" not in str(err.value) and "ola@uio.no" not in str(err.value)


def test_null_required_field_is_missing() -> None:
    with pytest.raises(InvalidSourceData, match="start"):
        parse_assessment(record(start=None))


def test_time_without_offset_is_invalid() -> None:
    with pytest.raises(InvalidSourceData, match="start"):
        parse_assessment(record(start="2026-12-01T09:00:00"))


def test_unparsable_field_is_named() -> None:
    with pytest.raises(InvalidSourceData, match="arstall"):
        parse_assessment(record(arstall="tjuetjuesju"))


def test_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidSourceData):
        parse_assessment(["a list"])


def test_optional_fields_may_be_missing_or_null() -> None:
    a = parse_assessment(
        {
            "id": FS_ID,
            "emnekode": "INF1000",
            "start": "2026-12-01T09:00:00+01:00",
            "slutt": None,
            "eksamensansvarlige": None,
            "kandidater": None,
            "arstall": None,
        }
    )
    assert a.slutt is None and a.responsibles == () and a.candidate_count == 0
    assert a.year == 2026  # falls back to the exam's year


def test_numeric_codes_are_text() -> None:
    a = parse_assessment(record(institusjonsnr=185, versjonskode=1))
    assert (a.institusjonsnr, a.versjonskode) == ("185", "1")


def test_eligibility_rules_in_order() -> None:
    a = parse_assessment(record())
    assert ineligible_reason(a, 2025, []) is None
    assert ineligible_reason(a, 2027, []) is Reason.BEFORE_START_YEAR
    assert ineligible_reason(a, 2025, ["185_15_10_0"]) is None
    # exact match, no hierarchy
    assert ineligible_reason(a, 2025, ["185_15_10"]) is Reason.PLACE_FILTERED
    assert ineligible_reason(parse_assessment(record(kandidater=[])), 2025, []) is Reason.NO_CANDIDATES
    no_place = parse_assessment(record(stedkode=None))
    assert ineligible_reason(no_place, 2025, ["185_15_10_0"]) is Reason.PLACE_FILTERED


def test_offset_is_kept_across_dst() -> None:
    a = parse_assessment(record(start="2026-10-25T01:30:00+02:00", slutt="2026-10-25T03:30:00+01:00"))
    assert a.slutt is not None
    assert a.slutt - a.start == timedelta(hours=3)
