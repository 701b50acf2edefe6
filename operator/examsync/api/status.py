"""The Institution's status (contracts/institution.md): the single source of the CRD's ``status``
schema, and the type the operator builds status with.

Written only by the operator, through the status subresource, as a JSON merge patch of one dump
(``wire``) against the last. Unknown fields are kept (a later version's status loads, and kopf's
own ``status.kopf`` is left alone); ``load`` drops a field it cannot read rather than the whole
status, so one odd value never costs the watermark or the schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from examsync.api.conditions import Condition
from examsync.api.spec import Mode, PipelineName
from examsync.api.timestamps import Timestamp
from examsync.domain.outcomes import ActionCounts, FsCounts, PraktikportalenCounts, Reason, WriteAction
from examsync.state import InstitutionState

log = logging.getLogger("examsync.operator")

# An enum in Python, a plain string in the CRD: the status of a later version, with a value this
# version does not know, must not be refused by the schema of an earlier CRD (see conditions).
_STRING = WithJsonSchema({"type": "string"})


def _listing(values: Any) -> str:
    return ", ".join(str(v) for v in values)


class _Open(BaseModel):
    """A status object whose unknown fields are kept (x-kubernetes-preserve-unknown-fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Failure(_Open):
    """A failed item, or a pipeline that failed as a whole (keyed by its name). No personal data."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="{pipeline}:{source id}, or the pipeline's name when it failed as a whole.")
    reason: Annotated[Reason, _STRING] = Field(description=f"Why it failed: {_listing(Reason)}.")
    message: str = Field(description="What failed: codes, counts and HTTP statuses, no personal data.")
    since: Timestamp = Field(description="When it was first seen failing with this reason.")


class PlanEntry(_Open):
    """A write a DryRun run would make."""

    model_config = ConfigDict(frozen=True)

    pipeline: Annotated[PipelineName, _STRING] = Field(description="The pipeline that would write.")
    action: Annotated[WriteAction, _STRING] = Field(description="create or update.")
    key: str = Field(description="The item's key, {pipeline}:{source id}.")
    fields: list[Annotated[str, Field(description="A target API field name.")]] = Field(
        description="The target API's field names: every field sent (create), or those that differ (update)."
    )


class HistoryEntry(_Open):
    """One finished run."""

    runId: str = Field(description="The run's id (also in the logs and audit records).")
    start: Timestamp = Field(description="When the run started.")
    duration: float = Field(description="Seconds the run took.")
    result: str = Field(description="Succeeded, Stalled, or the Ready condition's reason of a failed run.")
    counts: ActionCounts = Field(description="Items by action, over every pipeline of the run.")


class PipelinesStatus(_Open):
    """The last run's counters, per pipeline that ran."""

    fs_inspera: FsCounts | None = Field(
        default=None, alias=PipelineName.FS_INSPERA.value, description="FS assessments to Inspera tests."
    )
    fs_wiseflow: FsCounts | None = Field(
        default=None, alias=PipelineName.FS_WISEFLOW.value, description="FS assessments to WISEflow flows."
    )
    praktikportalen_wiseflow: PraktikportalenCounts | None = Field(
        default=None,
        alias=PipelineName.PRAKTIKPORTALEN_WISEFLOW.value,
        description="Praktikportalen supervisors to WISEflow external assessors.",
    )

    def of(self, pipeline: PipelineName) -> FsCounts | PraktikportalenCounts | None:
        """One pipeline's counters (None: it did not run)."""
        by_name: dict[PipelineName, FsCounts | PraktikportalenCounts | None] = {
            PipelineName.FS_INSPERA: self.fs_inspera,
            PipelineName.FS_WISEFLOW: self.fs_wiseflow,
            PipelineName.PRAKTIKPORTALEN_WISEFLOW: self.praktikportalen_wiseflow,
        }
        return by_name[pipeline]

    def ran(self) -> list[PipelineName]:
        """The pipelines with counters, in run order."""
        return [name for name in PipelineName if self.of(name) is not None]


class InstitutionStatus(_Open):
    """Observed state, written by the operator through the status subresource."""

    observedGeneration: int | None = Field(
        default=None, description="The spec's metadata.generation the last run or decision was made for."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready (the last run's outcome), Reconciling (a run is going) and Stalled (what retrying "
        "will not fix), as kstatus reads them.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    mode: Annotated[Mode, _STRING] | None = Field(
        default=None, description="The last run's effective mode: Apply or DryRun (spec.mode)."
    )
    lastRunTime: Timestamp | None = Field(default=None, description="When the last run started.")
    lastSuccessTime: Timestamp | None = Field(
        default=None, description="When the last run with no failed item started."
    )
    nextRunTime: Timestamp | None = Field(
        default=None, description="When the next scheduled run starts (absent while suspended or invalid)."
    )
    lastHandledRequestedAt: str | None = Field(
        default=None,
        description="The value of the last run request handled: examsync.io/requested-at, or Flux's "
        "reconcile.fluxcd.io/requestedAt (ours when both were new).",
    )
    handledRequests: dict[str, Annotated[str, Field(description="The annotation's value.")]] | None = Field(
        default=None,
        description="Per run-request annotation (examsync.io/requested-at, reconcile.fluxcd.io/requestedAt), "
        "the value the last run saw; another value requests a run.",
    )
    pipelines: PipelinesStatus | None = Field(default=None, description="The last run's counters, per pipeline.")
    failures: list[Failure] | None = Field(
        default=None, description="The last run's failures, newest first, at most 50."
    )
    history: list[HistoryEntry] | None = Field(default=None, description="The last runs, newest first, at most 5.")
    plan: list[PlanEntry] | None = Field(
        default=None, description="DryRun: the writes the last run would make (the first 50)."
    )
    planTotal: int | None = Field(default=None, description="DryRun: how many writes the last run would make.")
    progress: InstitutionState | None = Field(
        default=None,
        description="Durable progress between runs (the FS watermark, the retry set, pending creates, digests); "
        "identifiers, times and digests only.",
    )

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None) -> InstitutionStatus:
        """The status as read from the object. A field that cannot be read is left out (and
        never written back); the rest loads."""
        data = dict(raw or {})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            log.warning("status fields not readable; left as they are", extra={"fields": sorted(bad)})
            try:
                return cls.model_validate({k: v for k, v in data.items() if k not in bad})
            except ValidationError:
                return cls()

    def wire(self) -> dict[str, Any]:
        """The status as JSON for the API server (absent fields are left out, never null)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data
