"""The Institution resource: the single source of truth for its schema.

The CRD in ``crds/`` is generated from these models (``examsync crd``), and the CLI validates
manifests with them, so a field exists in exactly one place.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from examsync.api.conditions import ConditionReason
from examsync.api.fields import SecretKeys, UrlField, marker, walk
from examsync.errors import RunStoppingError
from examsync.hosts import is_loopback

API_GROUP = "examsync.io"
API_VERSION = "v1alpha1"
KIND = "Institution"
PLURAL = "institutions"
SINGULAR = "institution"
SHORT_NAMES = ["inst"]
CATEGORIES = ["examsync"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (``90s``, ``15m``, ``1h30m``)."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h), e.g. 90s, 15m, 6h")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text)))


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def is_loopback_host(host: str) -> bool:
    return is_loopback(host)


_URL_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no space: one reading for every URL parser


def check_url(url: str) -> str:
    """https everywhere; plain http only towards loopback (the sandbox). A base URL carries no
    user info, query or fragment (contracts/README.md, Security rule 1)."""
    if not _URL_CHARS.fullmatch(url) or "\\" in url:
        raise ValueError("must be printable ASCII without spaces or backslashes")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https:// (plain http:// is accepted only for loopback hosts)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not carry user info (credentials come from a Secret)")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("must not carry a query or a fragment")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url.rstrip("/")


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    # pydantic drops a pattern that follows a validator from the JSON schema; repeat it for the CRD.
    Field(pattern=DURATION_PATTERN, json_schema_extra={"example": "6h", "pattern": DURATION_PATTERN}),
]
URL_PATTERN = r"^https?://"
# The API server's check: no user info, query or fragment (the model says which, naming the field).
CRD_URL_PATTERN = r"^https?://[^/?#@\\\s]+(/[^?#\\\s]*)?$"
Url = Annotated[
    str,
    UrlField(),
    AfterValidator(check_url),
    Field(pattern=URL_PATTERN, max_length=2048, json_schema_extra={"pattern": CRD_URL_PATTERN}),
]
Name = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class PipelineName(StrEnum):
    """The pipelines, in run order."""

    FS_INSPERA = "fs-inspera"
    FS_WISEFLOW = "fs-wiseflow"
    PRAKTIKPORTALEN_WISEFLOW = "praktikportalen-wiseflow"


FS_PIPELINES = frozenset({PipelineName.FS_INSPERA, PipelineName.FS_WISEFLOW})


class Mode(StrEnum):
    APPLY = "Apply"
    DRY_RUN = "DryRun"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def secret_in_use(self, field: str, pipelines: Collection[PipelineName]) -> bool:
        """Whether the run needs the Secret this model's ``field`` references, when these
        pipelines are enabled (a part no enabled pipeline uses needs none of its Secrets)."""
        return True


class SecretRef(_Model):
    """A Secret in the Institution's own namespace."""

    name: Name = Field(description="Name of a Secret in the Institution's namespace.")


class FsSpec(_Model):
    """FS (Felles studentsystem), the source of assessments."""

    baseUrl: Url = Field(description="FS web service base URL, e.g. https://fsws.usit.no.")
    institutionNumber: str = Field(
        min_length=1, max_length=10, pattern=r"^[0-9]+$", description="FS institution number (institusjonsnr)."
    )
    startYear: int = Field(ge=2000, le=2100, description="Assessments with arstall before this year are ignored.")
    placeCodes: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=500,
        description="Stedkode filter, exact match (no hierarchy); empty means the whole institution.",
    )
    credentialsSecretRef: Annotated[SecretRef, SecretKeys("username", "password")] = Field(
        description="Secret with keys username and password (HTTP Basic)."
    )

    def secret_in_use(self, field: str, pipelines: Collection[PipelineName]) -> bool:
        return not FS_PIPELINES.isdisjoint(pipelines)


class GatewaySpec(_Model):
    """Route Inspera calls through the Gravitee gateway (IntArk) instead of calling Inspera directly."""

    baseUrl: Url = Field(description="Gateway base URL for Inspera.")
    apiKeySecretRef: Annotated[SecretRef, SecretKeys("apiKey")] = Field(
        description="Secret with key apiKey (sent as X-Gravitee-Api-Key)."
    )


class InsperaSpec(_Model):
    """Inspera Assessment: tests created and updated from FS assessments (pipeline fs-inspera)."""

    enabled: bool = Field(default=False, description="Run the fs-inspera pipeline.")
    baseUrl: Url | None = Field(default=None, description="Inspera API base URL, e.g. https://uio.inspera.no/api.")
    clientId: str | None = Field(
        default=None, max_length=253, description="Inspera client id, usually the instance host name."
    )
    credentialsSecretRef: Annotated[SecretRef | None, SecretKeys("apiKey")] = Field(
        default=None, description="Secret with key apiKey (direct route)."
    )
    gateway: GatewaySpec | None = Field(default=None, description="Optional route through Gravitee.")
    concurrency: int = Field(default=8, ge=1, le=64, description="Items handled at once in this pipeline.")

    def secret_in_use(self, field: str, pipelines: Collection[PipelineName]) -> bool:
        # through the gateway, the direct route's Secret is not used
        direct_only = field == "credentialsSecretRef" and self.gateway is not None
        return PipelineName.FS_INSPERA in pipelines and not direct_only

    @model_validator(mode="after")
    def _route(self) -> InsperaSpec:
        if self.enabled and self.gateway is None:
            missing = [n for n in ("baseUrl", "clientId", "credentialsSecretRef") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)} required for the direct route (or set gateway)")
        return self


class FsFlowsSpec(_Model):
    """FS assessments become WISEflow flows (pipeline fs-wiseflow)."""

    enabled: bool = Field(default=True, description="Run the fs-wiseflow pipeline.")
    flowTypeId: int = Field(ge=1, description="WISEflow flow type for created flows.")
    feideUserDataTypeId: int = Field(ge=1, description="WISEflow user data type holding FEIDE ids.")
    fallbackManagerUserId: int = Field(ge=1, description="Manager used when no responsible is found.")


class PraktikportalenSpec(_Model):
    """Praktikportalen supervisors become external assessors (pipeline praktikportalen-wiseflow)."""

    enabled: bool = Field(default=False, description="Run the praktikportalen-wiseflow pipeline.")
    baseUrl: Url = Field(description="Praktikportalen API base URL.")
    praktikportalId: str = Field(min_length=1, max_length=64, description="The licence's Praktikportal-ID.")
    credentialsSecretRef: Annotated[SecretRef, SecretKeys("apiKey")] = Field(description="Secret with key apiKey.")
    userDataTypeId: int = Field(ge=1, description="WISEflow user data type holding the praktikportal-ID.")
    externalAssessorTypeId: int = Field(ge=1, description="WISEflow assessor type for external assessors.")
    externalAssessorRoleId: int = Field(ge=1, description="WISEflow role given to imported supervisors.")

    def secret_in_use(self, field: str, pipelines: Collection[PipelineName]) -> bool:
        return PipelineName.PRAKTIKPORTALEN_WISEFLOW in pipelines


class WiseflowSpec(_Model):
    """WISEflow (UNIwise)."""

    enabled: bool = Field(default=False, description="Use WISEflow at all.")
    baseUrl: Url = Field(description="WISEflow API base URL, e.g. https://europe-api.wiseflow.net/v1.")
    credentialsSecretRef: Annotated[SecretRef, SecretKeys("clientId", "clientSecret")] = Field(
        description="Secret with keys clientId and clientSecret."
    )
    fsFlows: FsFlowsSpec | None = Field(default=None, description="FS assessments to flows.")
    praktikportalen: PraktikportalenSpec | None = Field(
        default=None, description="Praktikportalen supervisors to external assessors."
    )
    concurrency: int = Field(default=8, ge=1, le=64, description="Items handled at once per pipeline.")

    def secret_in_use(self, field: str, pipelines: Collection[PipelineName]) -> bool:
        return not {PipelineName.FS_WISEFLOW, PipelineName.PRAKTIKPORTALEN_WISEFLOW}.isdisjoint(pipelines)


class SlackSpec(_Model):
    """Slack incoming webhook: one message per run with notifiable items."""

    webhookSecretRef: Annotated[SecretRef, SecretKeys("url", url_key="url")] = Field(
        description="Secret with key url (the webhook URL)."
    )
    suppressReasons: list[Annotated[str, Field(pattern=r"^[A-Z][A-Za-z]+$")]] = Field(
        default_factory=list, max_length=50, description="Reason codes that never notify."
    )


class NotificationsSpec(_Model):
    slack: SlackSpec | None = Field(default=None, description="Slack notifications.")


class HumioSpec(_Model):
    """Humio/LogScale repository that receives the audit records."""

    url: Url = Field(description="Humio/LogScale base URL.")
    tokenSecretRef: Annotated[SecretRef, SecretKeys("token")] = Field(
        description="Secret with key token (ingest token)."
    )


class AuditSpec(_Model):
    humio: HumioSpec | None = Field(default=None, description="Send audit records to Humio/LogScale.")


_CEL_RULES: list[JsonValue] = [
    {
        "rule": "(has(self.inspera) && self.inspera.enabled) || (has(self.wiseflow) && self.wiseflow.enabled"
        " && ((has(self.wiseflow.fsFlows) && self.wiseflow.fsFlows.enabled)"
        " || (has(self.wiseflow.praktikportalen) && self.wiseflow.praktikportalen.enabled)))",
        "message": "at least one pipeline must be enabled (inspera, wiseflow.fsFlows or wiseflow.praktikportalen)",
    },
    {
        "rule": "has(self.fs) || !((has(self.inspera) && self.inspera.enabled) || (has(self.wiseflow)"
        " && self.wiseflow.enabled && has(self.wiseflow.fsFlows) && self.wiseflow.fsFlows.enabled))",
        "message": "fs is required when an enabled pipeline reads FS (inspera or wiseflow.fsFlows)",
        "fieldPath": ".fs",
    },
]


class InstitutionSpec(_Model):
    """Desired state of one institution's exam-platform synchronisation."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _CEL_RULES})

    shortName: str = Field(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="Short name (orgId in audit records)."
    )
    suspend: bool = Field(default=False, description="Stop runs; status says so; nothing else changes.")
    mode: Mode = Field(
        default=Mode.APPLY, description="Apply writes; DryRun reads everything and reports what would change."
    )
    interval: Duration = Field(default="6h", description="Time between runs (Go-style duration, at least 1m).")
    lookback: Duration = Field(default="72h", description="FS change window on the first run.")
    fs: FsSpec | None = Field(default=None, description="FS; required when a pipeline reads FS.")
    inspera: InsperaSpec | None = Field(default=None, description="FS to Inspera.")
    wiseflow: WiseflowSpec | None = Field(default=None, description="FS to WISEflow and Praktikportalen to WISEflow.")
    notifications: NotificationsSpec | None = Field(default=None, description="Where failures are announced.")
    audit: AuditSpec | None = Field(default=None, description="Where audit records go besides the log stream.")

    @model_validator(mode="after")
    def _cross_field(self) -> InstitutionSpec:
        if not self.pipelines():
            raise ValueError(
                "at least one pipeline must be enabled (inspera, wiseflow.fsFlows or wiseflow.praktikportalen)"
            )
        if self.fs is None and not FS_PIPELINES.isdisjoint(self.pipelines()):
            raise ValueError("fs is required when an enabled pipeline reads FS (inspera or wiseflow.fsFlows)")
        if self.interval_delta < timedelta(minutes=1):
            raise ValueError("interval must be at least 1m")
        return self

    def pipelines(self) -> list[PipelineName]:
        """The enabled pipelines, in run order."""
        names: list[PipelineName] = []
        if self.inspera is not None and self.inspera.enabled:
            names.append(PipelineName.FS_INSPERA)
        wf = self.wiseflow
        if wf is not None and wf.enabled:
            if wf.fsFlows is not None and wf.fsFlows.enabled:
                names.append(PipelineName.FS_WISEFLOW)
            if wf.praktikportalen is not None and wf.praktikportalen.enabled:
                names.append(PipelineName.PRAKTIKPORTALEN_WISEFLOW)
        return names

    @property
    def interval_delta(self) -> timedelta:
        return parse_duration(self.interval)

    @property
    def lookback_delta(self) -> timedelta:
        return parse_duration(self.lookback)

    def urls(self) -> list[tuple[str, str]]:
        """Every (spec path, URL) the spec holds, enabled or not: each must name an allowed host."""
        return [(path, value) for path, info, value, _ in walk(self, SPEC) if marker(info, UrlField) and value]

    def secret_refs(self) -> list[SecretUse]:
        """Every Secret reference the enabled parts need, with the keys its Secret must hold."""
        pipelines = self.pipelines()

        def needed(owner: BaseModel, name: str) -> bool:
            return not isinstance(owner, _Model) or owner.secret_in_use(name, pipelines)

        return [
            SecretUse(path, value, keys.required, keys.url_key)
            for path, info, value, _ in walk(self, SPEC, needed)
            if isinstance(value, SecretRef) and (keys := marker(info, SecretKeys)) is not None
        ]

    def secret_urls(self) -> list[tuple[str, str, str]]:
        """Every (spec path, Secret name, key) whose value is a URL to call (the Slack webhook)."""
        return [(u.path, u.ref.name, u.url_key) for u in self.secret_refs() if u.url_key is not None]


SPEC = "spec"  # the prefix of every spec field's path


@dataclass(frozen=True)
class SecretUse:
    """A Secret the run reads: the spec field that references it, the reference, the keys it
    must hold, and the key (if any) whose value is a URL examsync calls."""

    path: str
    ref: SecretRef
    required: tuple[str, ...]
    url_key: str | None = None


class InstitutionMeta(_Model):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Name
    namespace: Name = "default"


class Institution(_Model):
    """A whole Institution manifest as the CLI reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    apiVersion: Literal["examsync.io/v1alpha1"]
    kind: Literal["Institution"]
    metadata: InstitutionMeta
    spec: InstitutionSpec

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


class SpecError(RunStoppingError, ValueError):
    """An invalid manifest; the message names each bad field by its path."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.INVALID_SPEC

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """Turn pydantic's errors into ``spec.fs.institutionNumber: field required`` lines."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        path = ".".join(p for p in (prefix, loc) if p)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msg = msg[:1].lower() + msg[1:]
        problems.append(f"{path or prefix or 'spec'}: {msg}")
    return problems


def parse_spec(data: Any, prefix: str = "spec") -> InstitutionSpec:
    try:
        return InstitutionSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc, prefix)) from None


def parse_institution(data: Any) -> Institution:
    try:
        return Institution.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc)) from None
