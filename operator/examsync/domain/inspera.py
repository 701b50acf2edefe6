"""What an Inspera test should look like for an FS assessment, and what differs (contracts/inspera.md).

Pure rules, no I/O. Candidates, graders and committees are never part of the body: Inspera's own
FS sync owns them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from examsync.domain.fs import Assessment

TITLE_MAX = 500
MAIN_RESPONSIBLE = "MAIN_RESPONSIBLE"
EXTERNAL_SYSTEM = "FS"

# Fields the operator owns on a linked test, in the order they are sent.
MANAGED_FIELDS = (
    "externalTestId",
    "variant",
    "title",
    "startTime",
    "endTime",
    "duration",
    "externalTest",
    "externalSystem",
    "authenticationSystem",
    "subjectCode",
    "versionCode",
    "evaluationType",
    "timeframeCode",
    "institution",
    "gradingDueDate",
    "contributors",
)
_TIME_FIELDS = frozenset({"startTime", "endTime"})


def sanitize_title(title: str) -> str:
    """Inspera's limits: no `[` or `]`, at most 500 characters."""
    cleaned = " ".join(title.replace("[", "").replace("]", "").split())
    return cleaned[:TITLE_MAX].rstrip()


def to_utc(value: datetime) -> str:
    """`2026-12-01T08:00:00Z`, converted by the time's own offset (never an assumed zone)."""
    if value.utcoffset() is None:
        raise ValueError("time without offset")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_and_duration(a: Assessment) -> tuple[datetime | None, int | None]:
    """End time and minutes: from FS where given, each derived from the other otherwise."""
    end, minutes = a.slutt, a.varighetMinutter
    if end is None and minutes is not None:
        end = a.start + timedelta(minutes=minutes)
    if minutes is None and end is not None:
        # aware datetimes subtract in absolute time, so a DST change inside the exam counts right
        minutes = int((end - a.start).total_seconds() // 60)
    return end, minutes


def desired_test(a: Assessment, contributor_ids: list[int]) -> dict[str, Any]:
    """The create/update body. Fields FS does not give are left out; with no contributor found,
    `contributors` is left out too, so an update never removes responsibles added by hand."""
    end, minutes = _end_and_duration(a)
    body: dict[str, Any] = {
        "externalTestId": a.id,
        "variant": a.vurdkombkode,
        "title": sanitize_title(a.emnetittel or "") or sanitize_title(a.emnekode),
        "startTime": to_utc(a.start),
        "endTime": to_utc(end) if end is not None else None,
        "duration": minutes,
        "externalTest": True,
        "externalSystem": EXTERNAL_SYSTEM,
        "authenticationSystem": "FEIDE",
        "subjectCode": a.emnekode,
        "versionCode": a.versjonskode,
        "evaluationType": a.vurderingsform,
        "timeframeCode": a.vurdtidkodeReell,
        "institution": a.institusjonsnr,
        "gradingDueDate": a.sensurfrist.isoformat() if a.sensurfrist is not None else None,
        "contributors": [{"userId": uid, "role": MAIN_RESPONSIBLE} for uid in contributor_ids] or None,
    }
    return {k: v for k, v in body.items() if v is not None}


def _same_time(want: Any, have: Any) -> bool:
    if not isinstance(have, str):
        return False
    try:
        parsed = datetime.fromisoformat(have.replace("Z", "+00:00"))
    except ValueError:
        return False
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return bool(to_utc(parsed) == want)


def _main_responsibles(have: Any) -> list[tuple[Any, str]]:
    if not isinstance(have, list):
        return []
    out = []
    for c in have:
        if isinstance(c, dict) and c.get("role") == MAIN_RESPONSIBLE:
            out.append((c.get("userId"), MAIN_RESPONSIBLE))
    return out


def _same(name: str, want: Any, have: Any) -> bool:
    if name in _TIME_FIELDS:
        return _same_time(want, have)
    if name == "contributors":
        # only the main responsibles are ours; other roles are set in Inspera by hand
        return [(c["userId"], c["role"]) for c in want] == _main_responsibles(have)
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int) and isinstance(have, int | float):
        return want == have
    return have is not None and str(want) == str(have)


_LINK_FIELDS = ("externalTestId", "externalTest", "externalSystem")


def changed_fields(desired: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """Names of the managed fields in `desired` whose value the existing test does not have."""
    info = existing.get("externalTestInfo")
    if isinstance(info, dict):
        # the link may be reported only inside externalTestInfo; it is the same fact
        existing = {**{k: info[k] for k in _LINK_FIELDS if k in info}, **existing}
    return [name for name in MANAGED_FIELDS if name in desired and not _same(name, desired[name], existing.get(name))]


def is_linked(existing: dict[str, Any]) -> bool:
    """False when the test was disconnected from FS in Inspera (never touch it then)."""
    info = existing.get("externalTestInfo")
    return not (isinstance(info, dict) and info.get("externalTest") is False)
