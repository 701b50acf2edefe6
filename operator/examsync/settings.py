"""Process settings: one model for every environment variable examsync reads, and the flags that
override them (`examsync run`, `examsync sync`). docs/settings.md is the table of them.

Read where a command starts (``Settings.load``); a flag given on the command line wins over the
environment. An empty variable counts as unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from examsync.store_url import StoreUrl

ENV_PREFIX = "EXAMSYNC_"

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting that cannot be used; names the environment variable (or flag) and why."""


class Settings(BaseSettings):
    # hide_input_in_errors: a value that cannot be used is never repeated (a database URL holds a password)
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="ignore", hide_input_in_errors=True
    )

    allowed_hosts: str = Field(
        default="",
        description="Upstream hosts any Institution may name, comma-separated (host, host:port, *.domain, IP "
        "literal); empty: the real systems' public hosts. `examsync sync --allow-host` adds to it.",
    )
    max_connections_per_host: int | None = Field(
        default=None, ge=1, description="Connections at once to one upstream host, shared by every Institution (8)."
    )
    max_requests_per_second_per_host: float = Field(
        default=0.0, ge=0, description="Requests per second to one upstream host; 0: no rate limit."
    )
    http_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for an upstream's answer.")
    retry_base_delay: float = Field(default=0.2, ge=0, description="First retry delay in seconds (doubling, jittered).")
    call_deadline: float = Field(
        default=60.0, gt=0, description="Seconds one upstream call may take, its retries included."
    )
    log_level: LogLevel = Field(default="info", description="Level of the JSON log lines on stderr.")
    peering: str = Field(
        default="examsync",
        description="kopf peering object of `examsync run`: the replica of highest priority is active.",
    )
    pod_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("POD_NAME", "pod_name"),
        description="The operator's pod (no prefix; the chart sets it from the downward API): the reporting "
        "instance of its Events. Unset: the host name, which in a pod is the pod's name too.",
    )
    kubeconfig: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KUBECONFIG", "kubeconfig"),
        description="Outside a cluster, the kubeconfig file(s) to log in with (no prefix, as kubectl reads it); "
        "unset: ~/.kube/config. In a pod, its service account.",
    )
    audit_db: Annotated[StoreUrl | None, NoDecode] = Field(
        default=None,
        description="The audit history store: sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DB; "
        "unset: none. Its password is never printed.",
    )
    audit_retention_days: float = Field(
        default=400.0,
        gt=0,
        le=36_500,
        description="Audit history rows older than this many days are deleted, in batches (at most a century).",
    )
    ssl_cert_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SSL_CERT_FILE", "ssl_cert_file"),
        description="CA bundle for upstream TLS (the standard variable, no prefix); unset: certifi's bundle.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """The environment, with the flags that were given (not None) over it. Raises SettingsError."""
        try:
            return cls(**{name: value for name, value in flags.items() if value is not None})
        except ValidationError as exc:
            problems = [f"{_variable(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors() if e["loc"]]
            raise SettingsError("; ".join(problems) or str(exc)) from None


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    info = Settings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return f"{ENV_PREFIX}{field.upper()}"


def _variable(loc: str) -> str:
    return env_name(loc) if loc in Settings.model_fields else loc
