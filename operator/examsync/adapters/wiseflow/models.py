"""WISEflow's API as typed models (contracts/wiseflow.md; WISEflow's OpenAPI description is the
authority): the requests examsync sends and the answers it reads, errors included.

Requests are strict and closed: a field the API does not name, a value of the wrong type, a name
outside an enum or a reference outside the pattern is refused, by the client before it sends and
by the simulator when it receives. Answers are read tolerantly (fields WISEflow may add later are
ignored) but typed: a missing required field or an unknown state is a shape error for that item.
The contract tests compare these models with the spec, field by field.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from examsync.domain.wiseflow import (
    REFERENCE_MAX_LENGTH,
    REFERENCE_PATTERN,
    Assessor,
    FlowSource,
    FlowState,
    FoundFlow,
    SourceState,
    Window,
)

# --- enums ---------------------------------------------------------------------------------------


class FlowType(StrEnum):
    """A flow's type as the flow search answers it."""

    FLOWassign = "FLOWassign"
    FLOWlock = "FLOWlock"
    FLOWmulti = "FLOWmulti"
    FLOWhandin = "FLOWhandin"
    FLOWoral = "FLOWoral"
    FLOWattend = "FLOWattend"


class Variant(StrEnum):
    """A flow's variant in the search answer; the same names are the metadata's examinationType."""

    ORDINARY = "ORDINARY"
    REEXAMINATION = "REEXAMINATION"
    REMARKING = "REMARKING"


class Purpose(StrEnum):
    EXAMINATION = "EXAMINATION"
    COURSE_WORK = "COURSE_WORK"
    BACHELOR = "BACHELOR"
    MASTER = "MASTER"


class Comparator(StrEnum):
    GREATER = "GREATER"
    GREATER_EQUAL = "GREATER_EQUAL"
    LESS = "LESS"
    LESS_EQUAL = "LESS_EQUAL"
    EQUAL = "EQUAL"


# --- bases ---------------------------------------------------------------------------------------


class Request(BaseModel):
    """A request body: closed and strictly typed. Sent as `body()`: only the fields set.

    An optional field may be left out; it may be null only when named in `nullable`."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _null_only_where_allowed(self) -> Self:
        for name in sorted(self.model_fields_set - self.nullable):
            if getattr(self, name) is None:
                raise ValueError(f"{type(self).model_fields[name].alias or name} may not be null")
        return self

    def body(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Answer(BaseModel):
    """An answer: fields WISEflow adds later are ignored; those the rules need are typed."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def body(self) -> dict[str, object]:
        """As the simulator sends it: only the fields it set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


Reference = Annotated[str, Field(max_length=REFERENCE_MAX_LENGTH, pattern=REFERENCE_PATTERN)]
UnixTime = int
T = TypeVar("T")


# --- error envelope and paging -----------------------------------------------------------------


class ApiErrorDetail(Answer):
    reason: str | None = None
    message: str | None = None


class ApiError(Answer):
    code: int | None = None
    message: str | None = None
    errors: list[ApiErrorDetail] = []


class Pagination(Answer):
    limit: int
    offset: int
    total: int


class Envelope(Answer, Generic[T]):
    """`{success, data, error}`."""

    success: bool
    data: T
    error: ApiError | None = None


class Page(Envelope[T], Generic[T]):
    """The envelope of a paged operation: `pagination` says where the page is and the total."""

    pagination: Pagination | None = None


class NoData(Answer):
    """`{success, data: null, error: null}`: an answer without data."""

    success: bool
    data: None = None
    error: ApiError | None = None


# --- auth ----------------------------------------------------------------------------------------


class TokenForm(Request):
    """`POST /oauth2/token`, form-encoded."""

    client_id: str
    client_secret: str
    grant_type: str

    def body_form(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "grant_type": self.grant_type}


class TokenAnswer(Answer):
    access_token: str = Field(min_length=1)
    expires_in: int | None = None
    token_type: str | None = None
    scope: str | None = None


class TokenRefusal(Answer):
    error: str | None = None
    error_description: str | None = None


# --- flows ---------------------------------------------------------------------------------------


class CreatedAtFilter(Request):
    from_: UnixTime | None = Field(default=None, alias="from")
    to: UnixTime | None = None


class SearchMetadata(Request):
    title: str | None = None  # partial match
    subtitle: str | None = None  # partial match
    externalSourceReference: str | None = None
    code: str | None = None
    term: str | None = None
    states: list[FlowState] | None = None
    purposes: list[Purpose] | None = None
    isSis: bool | None = None
    createdAt: CreatedAtFilter | None = None


class DateFilter(Request):
    start: int | None = None
    startComparator: Comparator | None = None
    end: int | None = None
    endComparator: Comparator | None = None


class SearchDates(Request):
    participation: DateFilter | None = None
    marking: DateFilter | None = None


class SearchSettings(Request):
    gradingScaleId: int | None = None
    usesLockdownBrowser: bool | None = None
    hasSubmissionOfAssessment: bool | None = None


class SearchRoom(Request):
    roomId: int | None = None


class SearchContent(Request):
    activityReference: str | None = None
    rubricsReference: str | None = None
    assignmentFileName: str | None = None
    materialFileName: str | None = None


class FlowSearch(Request):
    """`POST /flows/search`: every filter optional, all of them combined."""

    metadata: SearchMetadata | None = None
    dates: SearchDates | None = None
    settings: SearchSettings | None = None
    room: SearchRoom | None = None
    content: SearchContent | None = None


class DatePair(Answer):
    start: UnixTime | None = None
    end: UnixTime | None = None

    def window(self) -> Window | None:
        return Window(self.start, self.end) if self.start is not None and self.end is not None else None


class FlowItem(Answer):
    """One hit of `POST /flows/search`."""

    flowId: int
    title: str | None = None
    subtitle: str | None = None
    externalSourceReferences: list[str] = []
    createdAt: UnixTime | None = None
    type: FlowType | None = None
    state: FlowState
    variant: Variant | None = None
    purpose: Purpose | None = None
    participation: DatePair | None = None
    marking: DatePair | None = None

    def found(self) -> FoundFlow:
        return FoundFlow(
            flow_id=self.flowId,
            title=self.title,
            subtitle=self.subtitle,
            state=self.state,
            references=tuple(self.externalSourceReferences),
            created_at=self.createdAt,
            participation=self.participation.window() if self.participation else None,
            marking=self.marking.window() if self.marking else None,
        )


class CreateFlow(Request):
    """`POST /license/create/flow`."""

    title: str
    subTitle: str | None = None
    type: int
    managers: list[int]


class CreatedFlow(Answer):
    flowId: int


# --- external sources ----------------------------------------------------------------------------


class NewExternalSource(Request):
    """`POST /flows/{flowId}/external-sources`."""

    nullable = frozenset({"description"})
    reference: Reference
    description: str | None = None


class ExternalSourceAnswer(Answer):
    id: int
    reference: str
    description: str | None = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    lastRequestedSync: datetime | None = None
    lastSync: datetime | None = None
    state: SourceState | None = None

    def source(self) -> FlowSource:
        return FlowSource(reference=self.reference, state=self.state)


# --- dates and metadata --------------------------------------------------------------------------


class DatesPatchPair(Request):
    nullable = frozenset({"start", "end"})
    start: UnixTime | None = None
    end: UnixTime | None = None


class DatesPatch(Request):
    """`PATCH /flows/{flowId}/dates`: only the values set change; at least one must be set."""

    participation: DatesPatchPair | None = None
    marking: DatesPatchPair | None = None

    @model_validator(mode="after")
    def _something_set(self) -> DatesPatch:
        pairs = (self.participation, self.marking)
        if not any(p is not None and (p.start is not None or p.end is not None) for p in pairs):
            raise ValueError("at least one date must be set")
        return self

    @classmethod
    def of(cls, participation: Window | None, marking: Window | None) -> DatesPatch:
        values: dict[str, DatesPatchPair] = {}
        if participation is not None:
            values["participation"] = DatesPatchPair(start=participation.start, end=participation.end)
        if marking is not None:
            values["marking"] = DatesPatchPair(start=marking.start, end=marking.end)
        return cls(**values)


class MetadataAnswer(Answer):
    title: str
    subtitle: str | None = None
    code: str | None = None
    term: str | None = None
    examinationType: Variant
    purpose: Purpose


class MetadataPut(Request):
    """`PUT /flows/{flowId}/metadata`: the whole object (a field left out may be cleared)."""

    nullable = frozenset({"subtitle", "code", "term"})
    title: str = Field(min_length=1)
    subtitle: str | None = None
    code: str | None = None
    term: str | None = None
    examinationType: Variant
    purpose: Purpose


# --- users ---------------------------------------------------------------------------------------


class ExternalIdAnswer(Answer):
    name: str | None = None
    value: str | None = None


class RoleAnswer(Answer):
    name: str | None = None
    relationIds: list[int] | None = None


class UserAnswer(Answer):
    """`GET /user/userDataType/{userDataType}/{value}`: the user's id is `id`."""

    id: int
    firstName: str
    lastName: str
    phone: str
    externalIds: list[ExternalIdAnswer] | None = None
    language: str | None = None
    roles: list[RoleAnswer] | None = None
    emails: list[str] | None = None


class ExternalIdWrite(Request):
    userDataTypeId: int
    value: str


class UserWrite(Request):
    """`POST /license/user`: creates the user, or updates the one holding an external id."""

    firstName: str
    lastName: str
    phone: str | None = None
    externalIds: list[ExternalIdWrite] | None = None
    language: str | None = None
    roles: list[int]
    emails: list[str]


class WrittenUser(Answer):
    userId: int


# --- assessors -----------------------------------------------------------------------------------


class SimpleUser(Answer):
    userId: int
    firstName: str | None = None
    lastName: str | None = None


class AssessorAnswer(Answer):
    assessorId: int
    user: SimpleUser
    assessorTypeId: int | None = None

    def assessor(self) -> Assessor:
        return Assessor(assessor_id=self.assessorId, user_id=self.user.userId)


class AssessorUserData(Request):
    userDataTypeId: int
    value: str


class AddAssessor(Request):
    """`POST /flows/{flowId}/assessors`: the user by userId, userData or email."""

    userId: int | None = None
    email: str | None = None
    userData: AssessorUserData | None = None
    assessorTypeId: int | None = None

    @model_validator(mode="after")
    def _names_a_user(self) -> AddAssessor:
        if self.userId is None and self.email is None and self.userData is None:
            raise ValueError("a userId, userData or email names the user")
        return self
