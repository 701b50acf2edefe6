"""Codes that look like numbers are kept as text, whichever source sends them as JSON numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from examsync.domain.codes import number_as_text
from examsync.domain.fs import FsAssessmentRecord
from examsync.domain.wiseflow import Period, Supervisor


def test_numbers_become_text_and_other_values_stay() -> None:
    assert number_as_text(185) == "185"
    assert number_as_text("0185") == "0185"
    assert number_as_text(True) is True and number_as_text(None) is None


def test_each_source_model_keeps_its_codes_as_text() -> None:
    record = FsAssessmentRecord.model_validate({"institusjonsnr": 185, "versjonskode": 1})
    assert (record.institusjonsnr, record.versjonskode) == ("185", "1")
    assert Supervisor.model_validate({"praktikportalId": 10031}).praktikportalId == "10031"
    assert Period.model_validate({"periodNumber": 4711}).periodNumber == "4711"


def test_a_bool_is_no_code() -> None:
    with pytest.raises(ValidationError):
        Supervisor.model_validate({"praktikportalId": True})
