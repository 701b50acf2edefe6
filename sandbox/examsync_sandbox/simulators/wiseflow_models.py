"""WISEflow's answers and requests that only the simulator handles, typed as examsync's own models
are (`examsync.adapters.wiseflow.models`, on the same bases): operations examsync never calls
(`GET /flow/{flowId}`, `GET /flows/{flowId}/dates`, `POST /users/search`, `POST
/user/{userId}/access-token`, which Praktikportalen calls for its access links) and the error
envelope the simulator refuses with. The contract tests compare them with WISEflow's OpenAPI
description as they do examsync's."""

from __future__ import annotations

from enum import IntEnum

from examsync.adapters.wiseflow.models import Answer, ApiError, Request, UnixTime
from examsync.domain.wiseflow import FlowState


class FlowTypeBit(IntEnum):
    """A flow's type as `GET /flow/{flowId}` answers it: one bit per type."""

    FLOWDEFAULT = 0
    FLOWDEMO = 1
    FLOWASSIGN = 2
    FLOWLOCK = 4
    FLOWMULTI = 8
    FLOWHANDIN = 16
    FLOWORAL = 32
    FLOWATTEND = 64


class FlowStateCode(IntEnum):
    """A flow's state as `GET /flow/{flowId}` answers it (the search names them, see FlowState)."""

    NOT_ACTIVATED = 0
    PARTICIPATION_NOT_STARTED = 1
    PARTICIPATION_STARTED = 2
    PARTICIPATION_ENDED = 3
    CONCLUDED = 4
    ARCHIVED = 5


STATE_CODES: dict[FlowState, FlowStateCode] = {
    FlowState.NOT_ACTIVATED: FlowStateCode.NOT_ACTIVATED,
    FlowState.ACTIVATED: FlowStateCode.PARTICIPATION_NOT_STARTED,
    FlowState.PARTICIPATION_STARTED: FlowStateCode.PARTICIPATION_STARTED,
    FlowState.PARTICIPATION_ENDED: FlowStateCode.PARTICIPATION_ENDED,
    FlowState.CONCLUDED: FlowStateCode.CONCLUDED,
    FlowState.ARCHIVED: FlowStateCode.ARCHIVED,
}


class VariantCode(IntEnum):
    ORDINARY = 0
    REEXAMINATION = 1
    REMARKING = 2


class PurposeCode(IntEnum):
    EXAMINATION = 0
    COURSE_WORK = 1
    BACHELOR = 2
    MASTER = 3


class ErrorEnvelope(Answer):
    """`{success: false, data: null, error}`: how WISEflow refuses a request."""

    success: bool
    data: None = None
    error: ApiError


class SisInformation(Answer):
    code: str | None = None


class BasicFlow(Answer):
    """`GET /flow/{flowId}` (the simulator serves it; the search answer makes it unneeded)."""

    id: int
    name: str | None = None
    subName: str | None = None
    creationDate: UnixTime
    type: int
    state: FlowStateCode
    variant: VariantCode
    purpose: PurposeCode
    participantStartDate: UnixTime
    participantEndDate: UnixTime
    assessorStartDate: UnixTime  # the marking period
    assessorEndDate: UnixTime
    sisInformation: list[SisInformation] | None = None
    combinedMainFlowId: int | None = None
    combinedSubFlowIds: list[int] | None = None


class ParticipationDates(Answer):
    start: UnixTime | None = None
    end: UnixTime | None = None
    earliestIndividualStart: UnixTime | None = None
    latestIndividualEnd: UnixTime | None = None


class MarkingDates(Answer):
    start: UnixTime | None = None
    end: UnixTime | None = None
    earliestIndividualEnd: UnixTime | None = None
    latestIndividualEnd: UnixTime | None = None


class FlowDates(Answer):
    participation: ParticipationDates | None = None
    marking: MarkingDates | None = None


class UserDataQuery(Request):
    id: int
    value: str


class UserSearch(Request):
    """`POST /users/search`."""

    dataTypes: list[UserDataQuery] | None = None


class UserHitRole(Answer):
    name: str | None = None
    id: int | None = None


class UserHitDataType(Answer):
    id: int | None = None
    name: str | None = None
    value: str | None = None


class UserHit(Answer):
    id: int
    firstName: str | None = None
    lastName: str | None = None
    phone: str | None = None
    language: str | None = None
    emails: list[str] | None = None
    roles: list[UserHitRole] | None = None
    dataTypes: list[UserHitDataType] | None = None
    deactivated: bool | None = None


class AccessTokenRequest(Request):
    """`POST /user/{userId}/access-token`."""

    expirationDate: UnixTime | None = None
    password: str | None = None
    sendEmail: bool | None = None
    email: str | None = None


class AccessTokenAnswer(Answer):
    token: str
    expires: UnixTime | None = None
    creationDate: UnixTime | None = None
