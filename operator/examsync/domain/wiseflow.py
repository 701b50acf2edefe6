"""WISEflow rules (contracts/wiseflow.md), pure: no I/O.

Part A: the flow an FS assessment should have, and what differs from the flow there is.
Part B: which supervisors to write as users and which assessors to add or remove.
Personal data never leaves these functions except as the request bodies that need it; the
keys and digests kept in state are HMACs under a per-Institution secret, so they cannot be
recomputed from a guessed praktikportal id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator

from examsync.domain.fs import Assessment

OSLO = ZoneInfo("Europe/Oslo")

# Flow states
NOT_ACTIVATED = 0
PARTICIPATION_NOT_STARTED = 1
PARTICIPATION_STARTED = 2
PARTICIPATION_ENDED = 3
CONCLUDED = 4
ARCHIVED = 5
ACTIVE_STATES = (NOT_ACTIVATED, PARTICIPATION_NOT_STARTED, PARTICIPATION_STARTED, PARTICIPATION_ENDED)

FS_REFERENCE_PREFIX = "fs-"
FS_SOURCE_DESCRIPTION = "FS"
PP_REFERENCE_PREFIX = "praktikportalen:"

# Field names used in plans: the WISEflow API's own names.
# A create sends the flow, then links it (reference, description), then sets its dates.
CREATE_FIELDS = ("title", "subtitle", "type", "managers", "reference", "description", "participation", "marking")
USER_FIELDS = ("firstName", "lastName", "emails", "roles", "externalIds")
ASSESSOR_FIELDS = ("userId", "assessorTypeId")
SOURCE_SYNC_FIELDS = ("state", "lastSync")

# A pending create matches a flow created at most this long before it was recorded (clock skew
# between this host and WISEflow).
PENDING_CLOCK_SKEW = timedelta(seconds=60)


def is_closed(state: int) -> bool:
    """Concluded or archived flows are never changed."""
    return state not in ACTIVE_STATES


# --- Part A: FS assessments -> flows ---------------------------------------------------------


def fs_reference(fs_id: str) -> str:
    """`fs-` + the FS id in the URL-safe base64 alphabet without padding (the same bytes)."""
    return FS_REFERENCE_PREFIX + fs_id.replace("+", "-").replace("/", "_").rstrip("=")


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def marking_end(deadline: date) -> int:
    """Sensurfrist at 23:59:59 Oslo time, as unix seconds (the zone decides the offset, DST included)."""
    return unix(datetime.combine(deadline, time(23, 59, 59), tzinfo=OSLO))


@dataclass(frozen=True)
class Window:
    start: int
    end: int

    def as_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class DesiredFlow:
    title: str
    subtitle: str
    participation: Window
    marking: Window | None  # None when FS gives no sensurfrist: the flow's marking is left alone

    def dates_body(self, fields: Iterable[str] = ("participation", "marking")) -> dict[str, Any]:
        body: dict[str, Any] = {}
        wanted = set(fields)
        if "participation" in wanted:
            body["participation"] = self.participation.as_dict()
        if "marking" in wanted and self.marking is not None:
            body["marking"] = self.marking.as_dict()
        return body


def desired_flow(assessment: Assessment) -> DesiredFlow:
    start = unix(assessment.start)
    if assessment.slutt is not None:
        end = unix(assessment.slutt)
    elif assessment.varighetMinutter:
        end = start + assessment.varighetMinutter * 60
    else:
        end = start
    marking = Window(end, marking_end(assessment.sensurfrist)) if assessment.sensurfrist else None
    return DesiredFlow(
        title=assessment.emnetittel or assessment.emnekode,
        subtitle=assessment.emnekode,
        participation=Window(start, end),
        marking=marking,
    )


class FlowInfo(BaseModel):
    """`GET /flow/{flowId}` as far as the rules need it."""

    model_config = ConfigDict(extra="ignore")
    id: int
    name: str | None = None
    subName: str | None = None
    type: int | None = None
    state: int
    participantStartDate: int | None = None
    participantEndDate: int | None = None
    markingStartDate: int | None = None
    markingEndDate: int | None = None
    created: int | None = None


class FlowSummary(BaseModel):
    """One hit of `POST /flows/search`."""

    model_config = ConfigDict(extra="ignore")
    flowId: int
    title: str | None = None
    subtitle: str | None = None
    state: int


class ExternalSource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int | str | None = None
    reference: str
    description: str | None = None
    state: str | None = None
    lastSync: int | str | None = None


def metadata_diff(desired: DesiredFlow, flow: FlowInfo) -> list[str]:
    fields = []
    if (flow.name or "") != desired.title:
        fields.append("title")
    if (flow.subName or "") != desired.subtitle:
        fields.append("subtitle")
    return fields


def dates_diff(desired: DesiredFlow, flow: FlowInfo) -> list[str]:
    fields = []
    if (flow.participantStartDate, flow.participantEndDate) != (
        desired.participation.start,
        desired.participation.end,
    ):
        fields.append("participation")
    if desired.marking is not None and (flow.markingStartDate, flow.markingEndDate) != (
        desired.marking.start,
        desired.marking.end,
    ):
        fields.append("marking")
    return fields


def updated_metadata(current: Mapping[str, Any], desired: DesiredFlow) -> dict[str, Any]:
    """The whole metadata object back, with title and subtitle set (the PUT replaces it all)."""
    return {**current, "title": desired.title, "subtitle": desired.subtitle}


def pending_matches(
    flow: FlowInfo, summary: FlowSummary, title: str, subtitle: str | None, since: datetime
) -> bool:
    """Whether a flow found by title is the one a recorded, unlinked create made."""
    if summary.title != title or (subtitle is not None and (summary.subtitle or flow.subName) != subtitle):
        return False
    return flow.created is not None and flow.created >= unix(since - PENDING_CLOCK_SKEW)


# --- Part B: Praktikportalen supervisors -> external assessors -------------------------------


def period_of(reference: str) -> str | None:
    """`praktikportalen:{periodNumber}` → periodNumber."""
    if not reference.startswith(PP_REFERENCE_PREFIX):
        return None
    number = reference[len(PP_REFERENCE_PREFIX) :].strip()
    return number or None


class Supervisor(BaseModel):
    """A tilsynsførende as Praktikportalen sends one; fields optional so a gap is a rule, not a crash."""

    model_config = ConfigDict(extra="ignore")
    praktikportalId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    studentCount: int | None = None

    @field_validator("praktikportalId", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Period(BaseModel):
    model_config = ConfigDict(extra="ignore")
    periodNumber: str | None = None
    title: str | None = None
    start: date | None = None
    end: date | None = None
    supervisors: list[Supervisor] = []

    @field_validator("periodNumber", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_DONE_STATES = frozenset({"done", "success", "succeeded", "synced", "ok"})
_FAILED_STATES = frozenset({"fail", "failed", "error"})


def source_told(state: str | None, ok: bool) -> bool:
    """Whether an external source already shows this outcome (then it is not reported again)."""
    return (state or "").strip().lower() in (_DONE_STATES if ok else _FAILED_STATES)


def supervisor_problem(supervisor: Supervisor, position: int, total: int) -> str | None:
    """Why a supervisor cannot be imported, by position (a person's id is personal data)."""
    if not supervisor.praktikportalId:
        return f"supervisor {position} of {total} has no praktikportal id"
    if not supervisor.email or "@" not in supervisor.email:
        # an access link needs an e-mail; without one the supervisor could never log in
        return f"supervisor {position} of {total} has no e-mail"
    return None


def user_body(supervisor: Supervisor, role_id: int, user_data_type_id: int) -> dict[str, Any]:
    """`POST /license/user` for one supervisor."""
    assert supervisor.praktikportalId is not None and supervisor.email is not None
    return {
        "firstName": supervisor.firstName or "",
        "lastName": supervisor.lastName or "",
        "emails": [supervisor.email],
        "roles": [role_id],
        "externalIds": [{"userDataTypeId": user_data_type_id, "value": supervisor.praktikportalId}],
    }


# State keys carry a version: keys of the unkeyed format before it ("user:", "assessor:") are
# dropped on the first run after an upgrade (their users are written once more).
USER_KEY_PREFIX = "user-v2:"
ASSESSOR_KEY_PREFIX = "assessor-v2:"
LEGACY_KEY_PREFIXES = ("user:", "assessor:")


def _mac(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def user_key(secret: bytes, licence: str, user_data_type_id: int, praktikportal_id: str) -> str:
    """State key for one supervisor's user: an HMAC, never the id in clear nor a plain hash of it."""
    return USER_KEY_PREFIX + _mac(secret, f"{licence}\x1f{user_data_type_id}\x1f{praktikportal_id}")[:40]


def body_digest(secret: bytes, body: Mapping[str, Any]) -> str:
    """Digest of the fields last sent for a user (the fields themselves are personal data)."""
    return _mac(secret, json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def assessor_key(secret: bytes, flow_id: int, user_id: int) -> str:
    """State marker: this integration added this user as an assessor on this flow."""
    return ASSESSOR_KEY_PREFIX + _mac(secret, f"{flow_id}\x1f{user_id}")[:40]


def legacy_assessor_key(flow_id: int, user_id: int) -> str:
    """The unkeyed marker of the earlier state format, read once to carry it over."""
    return "assessor:" + hashlib.sha256(f"{flow_id}\x1f{user_id}".encode()).hexdigest()[:40]


class Assessor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    assessorId: int
    userId: int
    assessorTypeId: int | None = None


def assessors_to_remove(
    flow_state: int,
    assessors: Iterable[Assessor],
    period_user_ids: set[int],
    added_by_us: set[int],
) -> list[Assessor]:
    """Assessors to remove: only on a flow not yet activated, only those this integration added
    (their userIds), and only when they are no longer in the period."""
    if flow_state != NOT_ACTIVATED:
        return []
    return [a for a in assessors if a.userId not in period_user_ids and a.userId in added_by_us]
