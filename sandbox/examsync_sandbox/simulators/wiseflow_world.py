"""The WISEflow simulator's data: flows, their sources and assessors, users, credentials and
rate-limit windows, as tests arrange them and assert on them, and how each answers in the shapes of
WISEflow's OpenAPI description (the same models the client reads)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from examsync.adapters.wiseflow.models import (
    DatePair,
    ExternalIdAnswer,
    ExternalSourceAnswer,
    FlowItem,
    FlowType,
    MetadataAnswer,
    Purpose,
    RoleAnswer,
    UserAnswer,
    Variant,
)
from examsync.domain.wiseflow import FlowState, SourceState
from examsync_sandbox.simulators.wiseflow_models import (
    STATE_CODES,
    BasicFlow,
    FlowDates,
    FlowTypeBit,
    MarkingDates,
    ParticipationDates,
    PurposeCode,
    UserHit,
    UserHitDataType,
    UserHitRole,
    VariantCode,
)

_TYPE_NAMES = {
    FlowTypeBit.FLOWASSIGN: FlowType.FLOWassign,
    FlowTypeBit.FLOWLOCK: FlowType.FLOWlock,
    FlowTypeBit.FLOWMULTI: FlowType.FLOWmulti,
    FlowTypeBit.FLOWHANDIN: FlowType.FLOWhandin,
    FlowTypeBit.FLOWORAL: FlowType.FLOWoral,
    FlowTypeBit.FLOWATTEND: FlowType.FLOWattend,
}


def _iso(moment: float) -> datetime:
    return datetime.fromtimestamp(int(moment), UTC)


@dataclass
class ExternalSource:
    id: int
    reference: str
    description: str | None
    created: float
    updated: float
    state: SourceState = SourceState.NONE
    last_requested_sync: float | None = None
    last_sync: float | None = None
    syncs: list[str] = field(default_factory=list)  # "done"/"fail" in the order reported

    def answer(self) -> ExternalSourceAnswer:
        answer = ExternalSourceAnswer(
            id=self.id,
            reference=self.reference,
            description=self.description,
            createdAt=_iso(self.created),
            updatedAt=_iso(self.updated),
            state=self.state,
        )
        if self.last_requested_sync is not None:
            answer.lastRequestedSync = _iso(self.last_requested_sync)
        if self.last_sync is not None:
            answer.lastSync = _iso(self.last_sync)
        return answer


@dataclass
class Assessor:
    assessor_id: int
    user_id: int
    assessor_type_id: int | None


@dataclass
class Flow:
    id: int
    title: str
    subtitle: str
    type: int
    managers: list[int]
    licence: str = "default"
    state: FlowState = FlowState.NOT_ACTIVATED
    created: int = 0  # unix seconds
    participation: dict[str, int] | None = None  # {"start", "end"}
    marking: dict[str, int] | None = None
    code: str | None = None
    term: str | None = None
    variant: Variant = Variant.ORDINARY  # the metadata's examinationType
    purpose: Purpose = Purpose.EXAMINATION
    is_sis: bool = False
    external_sources: list[ExternalSource] = field(default_factory=list)
    assessors: list[Assessor] = field(default_factory=list)

    def references(self) -> list[str]:
        return [s.reference for s in self.external_sources]

    def item(self) -> FlowItem:
        """As the flow search answers it."""
        item = FlowItem(
            flowId=self.id,
            title=self.title,
            subtitle=self.subtitle,
            externalSourceReferences=self.references(),
            createdAt=self.created,
            state=self.state,
            variant=self.variant,
            purpose=self.purpose,
        )
        if self.type in _TYPE_NAMES:
            item.type = _TYPE_NAMES[FlowTypeBit(self.type)]
        if self.participation is not None:
            item.participation = DatePair(**self.participation)
        if self.marking is not None:
            item.marking = DatePair(**self.marking)
        return item

    def basic(self) -> BasicFlow:
        """As `GET /flow/{flowId}` answers it (a date never set is 0: the spec requires all four)."""
        p, m = self.participation or {}, self.marking or {}
        return BasicFlow(
            id=self.id,
            name=self.title,
            subName=self.subtitle,
            creationDate=self.created,
            type=self.type,
            state=STATE_CODES[self.state],
            variant=VariantCode[self.variant.value],
            purpose=PurposeCode[self.purpose.value],
            participantStartDate=p.get("start", 0),
            participantEndDate=p.get("end", 0),
            assessorStartDate=m.get("start", 0),
            assessorEndDate=m.get("end", 0),
        )

    def dates(self) -> FlowDates:
        dates = FlowDates()
        if self.participation is not None:
            start, end = self.participation["start"], self.participation["end"]
            dates.participation = ParticipationDates(
                start=start, end=end, earliestIndividualStart=start, latestIndividualEnd=end
            )
        if self.marking is not None:
            start, end = self.marking["start"], self.marking["end"]
            dates.marking = MarkingDates(start=start, end=end, earliestIndividualEnd=end, latestIndividualEnd=end)
        return dates

    def metadata(self) -> MetadataAnswer:
        return MetadataAnswer(
            title=self.title,
            subtitle=self.subtitle,
            code=self.code,
            term=self.term,
            examinationType=self.variant,
            purpose=self.purpose,
        )


@dataclass
class User:
    id: int
    first_name: str
    last_name: str
    emails: list[str]
    roles: list[int]
    external_ids: dict[int, str]  # userDataTypeId -> value
    licence: str = "default"
    phone: str = ""
    language: str = "da_DK"
    deactivated: bool = False

    def answer(self, data_type_names: dict[int, str]) -> UserAnswer:
        return UserAnswer(
            id=self.id,
            firstName=self.first_name,
            lastName=self.last_name,
            phone=self.phone,
            externalIds=[
                ExternalIdAnswer(name=data_type_names.get(t, f"Data type {t}"), value=v)
                for t, v in sorted(self.external_ids.items())
            ],
            language=self.language,
            roles=[RoleAnswer(name=f"Role {r}", relationIds=[]) for r in self.roles],
            emails=list(self.emails),
        )

    def hit(self, data_type_names: dict[int, str]) -> UserHit:
        return UserHit(
            id=self.id,
            firstName=self.first_name,
            lastName=self.last_name,
            phone=self.phone,
            language=self.language,
            emails=list(self.emails),
            roles=[UserHitRole(name=f"Role {r}", id=r) for r in self.roles],
            dataTypes=[
                UserHitDataType(id=t, name=data_type_names.get(t, f"Data type {t}"), value=v)
                for t, v in sorted(self.external_ids.items())
            ],
            deactivated=self.deactivated,
        )


class _Window:
    """Requests of one credential within the last `seconds` (a sliding window)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.times: deque[float] = deque()
        self.peak = 0

    def hit(self, now: float, limit: int) -> float | None:
        """Count a request; seconds until one fits again if the limit is exceeded, else None."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) >= limit:
            return self.times[0] + self.seconds - now
        self.times.append(now)
        self.peak = max(self.peak, len(self.times))
        return None


@dataclass
class World:
    """The data a test arranges and asserts on."""

    credentials: dict[str, str] = field(default_factory=dict)  # clientId -> clientSecret
    licences: dict[str, str] = field(default_factory=dict)  # clientId -> licence (default "default")
    flows: dict[int, Flow] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    data_type_names: dict[int, str] = field(default_factory=dict)  # userDataTypeId -> its name
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> clientId
    per_second: int = 200
    per_minute: int = 5000
    rate_limited: int = 0  # 429s sent
    tokens_issued: int = 0
    access_tokens: list[dict[str, Any]] = field(default_factory=list)
    # called after a flow is stored and before the create answer goes out (crash tests)
    on_flow_created: Callable[[Flow], None] | None = None
    # consulted on each user write: a status to refuse it with (fault tests), or None
    refuse_user_write: Callable[[dict[str, Any]], int | None] | None = None
    clock: Callable[[], float] = time.time
    _next: int = 9001
    _second: dict[str, _Window] = field(default_factory=dict)
    _minute: dict[str, _Window] = field(default_factory=dict)

    def next_id(self) -> int:
        value, self._next = self._next, self._next + 1
        return value

    def peek_next_id(self) -> int:
        """The id the next created object gets (to aim a one-off fault at a path)."""
        return self._next

    # --- arranging -----------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str, licence: str = "default") -> None:
        """API credentials; they are licence-scoped: a client sees its licence's flows and users only."""
        self.credentials[client_id] = client_secret
        self.licences[client_id] = licence

    def add_flow(
        self,
        title: str,
        subtitle: str = "",
        *,
        state: FlowState = FlowState.NOT_ACTIVATED,
        flow_type: int = FlowTypeBit.FLOWASSIGN,
        managers: list[int] | None = None,
        references: list[str] | None = None,
        participation: dict[str, int] | None = None,
        marking: dict[str, int] | None = None,
        created: int | None = None,
        licence: str = "default",
    ) -> Flow:
        flow = Flow(
            id=self.next_id(),
            title=title,
            subtitle=subtitle,
            type=flow_type,
            managers=managers or [],
            licence=licence,
            state=state,
            created=int(self.clock()) if created is None else created,
            participation=participation,
            marking=marking,
            code=subtitle or None,
        )
        for reference in references or []:
            self.link(flow, reference, "manual")
        self.flows[flow.id] = flow
        return flow

    def link(self, flow: Flow, reference: str, description: str | None) -> ExternalSource:
        """Add an external source (arranging: the reference is taken as given)."""
        now = self.clock()
        source = ExternalSource(
            id=self.next_id(), reference=reference, description=description, created=now, updated=now
        )
        flow.external_sources.append(source)
        return source

    def request_sync(self, flow: Flow, reference: str) -> None:
        """What a manager's "synchronise" in WISEflow does: the source waits for its integration."""
        source = next(s for s in flow.external_sources if s.reference == reference)
        source.state = SourceState.PENDING
        source.last_requested_sync = source.updated = self.clock()

    def add_user(
        self,
        first_name: str = "",
        *,
        last_name: str = "",
        emails: list[str] | None = None,
        external_ids: dict[int, str] | None = None,
        roles: list[int] | None = None,
        licence: str = "default",
    ) -> User:
        user = User(
            id=self.next_id(),
            first_name=first_name,
            last_name=last_name,
            emails=emails or [],
            roles=roles or [],
            external_ids=dict(external_ids or {}),
            licence=licence,
        )
        self.users[user.id] = user
        return user

    def add_assessor(self, flow: Flow, user: User, assessor_type_id: int | None) -> Assessor:
        assessor = Assessor(self.next_id(), user.id, assessor_type_id)
        flow.assessors.append(assessor)
        return assessor

    # --- asserting -----------------------------------------------------------------------------

    def flows_with_reference(self, reference: str) -> list[Flow]:
        return [f for f in self.flows.values() if reference in f.references()]

    def flows_titled(self, title: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.title == title]

    def user_by_external_id(self, user_data_type_id: int, value: str, licence: str | None = None) -> User | None:
        for user in self.users.values():
            if licence is not None and user.licence != licence:
                continue
            if user.external_ids.get(user_data_type_id) == value:
                return user
        return None

    def source(self, flow_id: int, reference: str) -> ExternalSource | None:
        flow = self.flows.get(flow_id)
        return next((s for s in flow.external_sources if s.reference == reference), None) if flow else None

    def peak_per_second(self) -> int:
        return max((w.peak for w in self._second.values()), default=0)

    def admit(self, client_id: str) -> float | None:
        """Count one request of a credential; seconds to wait if it is over a limit."""
        now = time.monotonic()
        second = self._second.setdefault(client_id, _Window(1.0))
        minute = self._minute.setdefault(client_id, _Window(60.0))
        wait = second.hit(now, self.per_second)
        if wait is None:
            wait = minute.hit(now, self.per_minute)
            if wait is not None:
                second.times.pop()  # not admitted after all
        return wait
