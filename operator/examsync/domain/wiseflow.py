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
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from examsync.domain.codes import CodeText
from examsync.domain.fs import Assessment

OSLO = ZoneInfo("Europe/Oslo")


class FlowState(StrEnum):
    """A flow's state as WISEflow's flow search filters and answers it."""

    NOT_ACTIVATED = "NOT_ACTIVATED"
    ACTIVATED = "ACTIVATED"  # participation not started yet
    PARTICIPATION_STARTED = "PARTICIPATION_STARTED"
    PARTICIPATION_ENDED = "PARTICIPATION_ENDED"
    CONCLUDED = "CONCLUDED"
    ARCHIVED = "ARCHIVED"


ACTIVE_STATES = (
    FlowState.NOT_ACTIVATED,
    FlowState.ACTIVATED,
    FlowState.PARTICIPATION_STARTED,
    FlowState.PARTICIPATION_ENDED,
)


class SourceState(StrEnum):
    """The sync state of a flow's external source."""

    NONE = "NONE"
    SUCCESS = "SUCCESS"
    PENDING = "PENDING"  # a sync was requested in WISEflow
    FAILED = "FAILED"


# An external source reference: WISEflow allows these characters only, at most 255 of them.
REFERENCE_PATTERN = r"^[a-zA-Z0-9-_]+$"
REFERENCE_MAX_LENGTH = 255

FS_REFERENCE_PREFIX = "fs-"
FS_SOURCE_DESCRIPTION = "FS"
PP_REFERENCE_PREFIX = "praktikportalen-"
# The form earlier versions documented; WISEflow never accepts it (`:` is outside the pattern),
# so it is only read, never written.
LEGACY_PP_REFERENCE_PREFIX = "praktikportalen:"

# Field names used in plans: the WISEflow API's own names.
# A create sends the flow, then links it (reference, description), then sets its dates.
CREATE_FIELDS = ("title", "subtitle", "type", "managers", "reference", "description", "participation", "marking")
USER_FIELDS = ("firstName", "lastName", "emails", "roles", "externalIds")
ASSESSOR_FIELDS = ("userId", "assessorTypeId")
SOURCE_SYNC_FIELDS = ("state", "lastSync")

# A pending create matches a flow created at most this long before it was recorded (clock skew
# between this host and WISEflow).
PENDING_CLOCK_SKEW = timedelta(seconds=60)


def is_closed(state: FlowState) -> bool:
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


@dataclass(frozen=True)
class DesiredFlow:
    title: str
    subtitle: str
    participation: Window
    marking: Window | None  # None when FS gives no sensurfrist: the flow's marking is left alone

    def windows(self, fields: Iterable[str] = ("participation", "marking")) -> tuple[Window | None, Window | None]:
        """(participation, marking) to send: those named in `fields`, None for the others."""
        wanted = set(fields)
        return (
            self.participation if "participation" in wanted else None,
            self.marking if "marking" in wanted else None,
        )


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


@dataclass(frozen=True)
class FoundFlow:
    """A flow as the flow search answers it: all the rules need, with no further look-up."""

    flow_id: int
    title: str | None
    subtitle: str | None
    state: FlowState
    references: tuple[str, ...]
    created_at: int | None  # unix seconds
    participation: Window | None  # None unless both start and end are set
    marking: Window | None


@dataclass(frozen=True)
class FlowSource:
    """One external source of a flow."""

    reference: str
    state: SourceState | None


@dataclass(frozen=True)
class Assessor:
    """An assessor on a flow: the assessorId (what a removal names) and the user's userId."""

    assessor_id: int
    user_id: int


def metadata_diff(desired: DesiredFlow, flow: FoundFlow) -> list[str]:
    fields = []
    if (flow.title or "") != desired.title:
        fields.append("title")
    if (flow.subtitle or "") != desired.subtitle:
        fields.append("subtitle")
    return fields


def dates_diff(desired: DesiredFlow, flow: FoundFlow) -> list[str]:
    fields = []
    if flow.participation != desired.participation:
        fields.append("participation")
    if desired.marking is not None and flow.marking != desired.marking:
        fields.append("marking")
    return fields


def pending_created_from(since: datetime) -> int:
    """The earliest creation time (unix seconds) a pending create's flow can have."""
    return unix(since - PENDING_CLOCK_SKEW)


def pending_matches(flow: FoundFlow, title: str, subtitle: str | None, since: datetime) -> bool:
    """Whether a flow found by the adoption search is the one a recorded, unlinked create made:
    the same title and subtitle (the search matches partial strings), created since the create
    was recorded, still open, and linked to no FS assessment. The search filtered by creation
    time already; an answer without `createdAt` (the spec does not require it) is taken on that
    filter's word rather than create a second flow."""
    if flow.title != title or (subtitle is not None and (flow.subtitle or "") != subtitle):
        return False
    if is_closed(flow.state) or any(r.startswith(FS_REFERENCE_PREFIX) for r in flow.references):
        return False
    return flow.created_at is None or flow.created_at >= pending_created_from(since)


# --- Part B: Praktikportalen supervisors -> external assessors -------------------------------


def pp_reference(period: str) -> str:
    """The external source reference that makes a flow take part in a period."""
    return PP_REFERENCE_PREFIX + period


def period_of(reference: str) -> str | None:
    """`praktikportalen-{periodNumber}` → periodNumber (the earlier `praktikportalen:` form is
    read too, so a flow that somehow carries it is still the same (flow, period) item)."""
    for prefix in (PP_REFERENCE_PREFIX, LEGACY_PP_REFERENCE_PREFIX):
        if reference.startswith(prefix):
            number = reference[len(prefix) :].strip()
            return number or None
    return None


class Supervisor(BaseModel):
    """A tilsynsførende as Praktikportalen sends one; fields optional so a gap is a rule, not a crash."""

    model_config = ConfigDict(extra="ignore")
    praktikportalId: CodeText = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    studentCount: int | None = None


class Period(BaseModel):
    model_config = ConfigDict(extra="ignore")
    periodNumber: CodeText = None
    title: str | None = None
    start: date | None = None
    end: date | None = None
    supervisors: list[Supervisor] = []


def source_told(state: SourceState | None, ok: bool) -> bool:
    """Whether an external source already shows this outcome (then it is not reported again);
    a source whose sync was requested (PENDING) or never reported (NONE) is told again."""
    return state is (SourceState.SUCCESS if ok else SourceState.FAILED)


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


def assessors_to_remove(
    flow_state: FlowState,
    assessors: Iterable[Assessor],
    period_user_ids: set[int],
    added_by_us: set[int],
) -> list[Assessor]:
    """Assessors to remove: only on a flow not yet activated, only those this integration added
    (their userIds), and only when they are no longer in the period."""
    if flow_state is not FlowState.NOT_ACTIVATED:
        return []
    return [a for a in assessors if a.user_id not in period_user_ids and a.user_id in added_by_us]
