"""FS assessments (vurderinger) as the DigEks `eksamen` service describes them (contracts/fs.md).

Pure rules, no I/O: parse one detail record, decode its id, decide whether it is in scope.
Personal data (responsibles' FEIDE ids, candidates, committees) stays inside the Assessment;
only counts ever leave it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from examsync.domain.codes import CodeText
from examsync.domain.outcomes import Reason

REQUIRED_FIELDS = ("id", "emnekode", "start")


class InvalidSourceData(Exception):  # named after its reason code
    """A source record that does not parse or lacks a required field. Names fields, never values."""

    def __init__(self, fields: list[str], problem: str = "missing or invalid") -> None:
        self.fields = sorted(set(fields))
        super().__init__(f"{problem} field(s): {', '.join(self.fields)}" if self.fields else problem)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FsResponsible(_Lenient):
    feideId: str | None = None


class FsCommittee(_Lenient):
    kommisjonsnr: int | None = None
    sensorer: list[dict[str, Any]] | None = None


class FsAssessmentRecord(_Lenient):
    """The detail record as FS sends it: every field optional so a gap is named, not a crash."""

    id: str | None = None
    institusjonsnr: CodeText = None
    emnekode: str | None = None
    versjonskode: CodeText = None
    vurdkombkode: str | None = None
    arstall: int | None = None
    vurdtidkode: str | None = None
    vurdtidkodeReell: str | None = None
    emnetittel: str | None = None
    vurderingsform: str | None = None
    eksamenssystem: str | None = None
    sensursystem: str | None = None
    begrunnelsessystem: str | None = None
    stedkode: str | None = None
    start: datetime | None = None
    slutt: datetime | None = None
    # an exam of more than ~70 days is not an exam: reject rather than overflow later
    varighetMinutter: int | None = Field(default=None, ge=0, le=100_000)
    sensurfrist: date | None = None
    sistEndret: datetime | None = None
    eksamensansvarlige: list[FsResponsible] | None = None
    kandidater: list[dict[str, Any]] | None = None
    kommisjoner: list[FsCommittee] | None = None

    @field_validator("start", "slutt", "sistEndret")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        # FS local times must carry their offset: converting by an assumed zone is wrong across DST
        if value is not None and value.utcoffset() is None:
            raise ValueError("time without offset")
        # far-off years overflow when converted to UTC or unix seconds; no exam lies there
        if value is not None and not 1900 <= value.year <= 2999:
            raise ValueError("time out of range")
        return value


@dataclass(frozen=True)
class Assessment:
    """One FS assessment, checked: required fields present, times offset-aware."""

    id: str
    emnekode: str
    start: datetime
    institusjonsnr: str | None
    versjonskode: str | None
    vurdkombkode: str | None
    arstall: int | None
    vurdtidkode: str | None
    vurdtidkodeReell: str | None
    emnetittel: str | None
    vurderingsform: str | None
    stedkode: str | None
    slutt: datetime | None
    varighetMinutter: int | None
    sensurfrist: date | None
    responsibles: tuple[str, ...]  # FEIDE ids in FS order (personal data: used for look-ups only)
    responsibles_listed: int  # entries FS listed, with or without a FEIDE id
    candidate_count: int

    @property
    def decoded_id(self) -> str | None:
        return decode_id(self.id)

    @property
    def year(self) -> int:
        """arstall, or the exam's local year when FS left it out."""
        return self.arstall if self.arstall is not None else self.start.year


def parse_assessment(data: Any) -> Assessment:
    """The checked Assessment, or InvalidSourceData naming the fields at fault (never their values)."""
    if not isinstance(data, dict):
        raise InvalidSourceData([], "record is not a JSON object")
    try:
        record = FsAssessmentRecord.model_validate(data)
    except ValidationError as exc:
        fields = [str(e["loc"][0]) if e["loc"] else "record" for e in exc.errors()]
        raise InvalidSourceData(fields, "invalid") from None
    missing = [name for name in REQUIRED_FIELDS if not getattr(record, name)]
    if missing:
        raise InvalidSourceData(missing, "missing")
    assert record.id is not None and record.emnekode is not None and record.start is not None
    responsibles = record.eksamensansvarlige or []
    return Assessment(
        id=record.id,
        emnekode=record.emnekode,
        start=record.start,
        institusjonsnr=record.institusjonsnr,
        versjonskode=record.versjonskode,
        vurdkombkode=record.vurdkombkode,
        arstall=record.arstall,
        vurdtidkode=record.vurdtidkode,
        vurdtidkodeReell=record.vurdtidkodeReell or record.vurdtidkode,
        emnetittel=record.emnetittel,
        vurderingsform=record.vurderingsform,
        stedkode=record.stedkode,
        slutt=record.slutt,
        varighetMinutter=record.varighetMinutter,
        sensurfrist=record.sensurfrist,
        responsibles=tuple(r.feideId for r in responsibles if r.feideId),
        responsibles_listed=len(responsibles),
        candidate_count=len(record.kandidater or []),
    )


PERSON_LISTS = ("eksamensansvarlige", "kandidater")


def people_of(record: Any) -> list[dict[str, Any]]:
    """The person entries of a raw detail record (responsibles, candidates, graders), as FS sent
    them: what an upstream's error text about this assessment must not repeat."""
    if not isinstance(record, dict):
        return []
    people = [p for name in PERSON_LISTS for p in _dicts(record.get(name))]
    for committee in _dicts(record.get("kommisjoner")):
        people.extend(_dicts(committee.get("sensorer")))
    return people


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def decode_id(fs_id: str) -> str | None:
    """`institusjonsnr||emnekode||...` from the standard-base64 FS id; None when it is not base64."""
    try:
        return base64.b64decode(fs_id.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None


def encode_id(  # the six parts of FS's key, in FS's order
    institusjonsnr: str, emnekode: str, versjonskode: str, vurdkombkode: str, arstall: int, vurdtidkode: str
) -> str:
    """The FS id of an assessment (standard base64 of the `||`-joined key, UTF-8)."""
    raw = "||".join([institusjonsnr, emnekode, versjonskode, vurdkombkode, str(arstall), vurdtidkode])
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def ineligible_reason(
    assessment: Assessment, start_year: int, place_codes: list[str] | tuple[str, ...]
) -> Reason | None:
    """Why the assessment is out of scope (a skip reason), or None when it is to be synced."""
    if assessment.year < start_year:
        return Reason.BEFORE_START_YEAR
    if place_codes and assessment.stedkode not in place_codes:
        return Reason.PLACE_FILTERED
    if assessment.candidate_count == 0:
        return Reason.NO_CANDIDATES
    return None
