"""Durable progress between runs: FS watermark, retry set, pending creates and digests.

The operator keeps it in ``status``; ``examsync sync --state FILE`` keeps it in a JSON file.
It holds identifiers, times and digests only, never personal data.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Bounds keep status objects small; when the retry set would overflow the watermark is held back
# instead (see PipelineState.advance), so nothing is dropped.
log = logging.getLogger("examsync.state")

MAX_RETRY = 1000
MAX_DIGESTS = 5000
# status.progress and the state file stay under this (etcd holds objects up to 1.5 MiB)
MAX_PROGRESS_BYTES = 512 * 1024
# Digest keys that mark facts rather than save work (an assessor this integration added, valued
# with its flow's id): kept while their flow is active, and dropped to make room only after every
# digest that merely saves work.
MARKER_PREFIX = "assessor"


class PendingCreate(BaseModel):
    """A create sent (or about to be) whose link to the source is not yet confirmed."""

    model_config = ConfigDict(extra="ignore")
    title: str = Field(description="The title the create sent (a course title, not personal data).")
    subtitle: str | None = Field(default=None, description="The subtitle the create sent.")
    since: datetime = Field(description="When the create was recorded: a flow it made was created after this.")


class PipelineState(BaseModel):
    """What one pipeline keeps between runs."""

    model_config = ConfigDict(extra="ignore")

    watermark: datetime | None = Field(default=None, description="Start of the last run whose list call succeeded.")
    retry: list[Annotated[str, Field(description="A source id (an FS id, or {flowId}:{period}).")]] = Field(
        default_factory=list, description="Source ids to fetch again, failed in an earlier run."
    )
    pending: dict[str, PendingCreate] = Field(
        default_factory=dict, description="Creates not yet linked to their source, by source id."
    )
    digests: dict[str, Annotated[str, Field(description="A keyed digest, or the flow id of an assessor marker.")]] = (
        Field(default_factory=dict, description="Digest of the fields last written, per hashed target key.")
    )

    def advance(
        self,
        run_started: datetime | None,
        failed_ids: list[str],
        listed_ok: bool,
        *,
        relist_watermark: datetime | None = None,
    ) -> PipelineState:
        """The state after a run: the new watermark and retry set.

        Ids already waiting that failed again keep their place, ahead of new ones: nothing but the
        retry set remembers them. New ids fill what room is left; if one does not fit, the
        watermark is held where the run's listing started (`relist_watermark`, else where it was),
        so FS lists it again on the next run rather than losing it.
        """
        failed = list(dict.fromkeys(failed_ids))
        failed_set = set(failed)
        waiting = [i for i in dict.fromkeys(self.retry) if i in failed_set]
        waiting_set = set(waiting)
        new = [i for i in failed if i not in waiting_set]
        room = max(0, MAX_RETRY - len(waiting))
        retry = waiting + new[:room]
        watermark = self.watermark
        if listed_ok and run_started is not None:
            watermark = run_started
        if len(new) > room:
            held = relist_watermark if relist_watermark is not None else self.watermark
            if watermark is not None and (held is None or held < watermark):
                watermark = held
        return self.model_copy(
            update={"watermark": watermark, "retry": retry, "digests": trim_digests(self.digests, MAX_DIGESTS)}
        )


def trim_digests(digests: dict[str, str], limit: int) -> dict[str, str]:
    """At most `limit` digests, dropping the oldest first (a dropped digest costs one extra write);
    markers are kept whatever the limit."""
    if len(digests) <= limit:
        return digests
    droppable = [k for k in digests if not k.startswith(MARKER_PREFIX)]
    drop = set(droppable[: len(digests) - limit])
    return {k: v for k, v in digests.items() if k not in drop}


class InstitutionState(BaseModel):
    """Durable progress of one Institution: identifiers, times and digests only."""

    model_config = ConfigDict(extra="ignore")
    pipelines: dict[str, PipelineState] = Field(default_factory=dict, description="Progress per pipeline, by name.")

    def pipeline(self, name: str) -> PipelineState:
        return self.pipelines.get(name) or PipelineState()


def bounded(state: InstitutionState, limit: int = MAX_PROGRESS_BYTES) -> dict[str, Any]:
    """`state` as JSON data of at most `limit` bytes (compact), dropping only what may go.

    Digests that merely save work go first (oldest first; a dropped one costs one write), then
    assessor markers (oldest first). The watermark, the retry set and pending creates are never
    dropped: they are what keeps a failed id or an unconfirmed create from being lost. Markers of
    flows no longer active are dropped by their pipeline as soon as it sees the flow closed.
    """
    data: dict[str, Any] = state.model_dump(mode="json")
    excess = _size(data) - limit
    if excess <= 0:
        return data
    for tier in (_work_savers, _markers):
        while excess > 0:
            dropped = 0
            for digests, key in tier(data):
                if excess <= 0:
                    break
                excess -= _size(key) + _size(digests[key]) + 2  # "key":"value",
                del digests[key]
                dropped += 1
            excess = _size(data) - limit  # the estimate may err by a few bytes: measure
            if not dropped:
                break
    if excess > 0:
        log.warning(
            "progress larger than its bound: only the retry set and pending creates are left",
            extra={"bytes": _size(data), "limit": limit},
        )
    return data


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _entries(data: dict[str, Any], markers: bool) -> Iterator[tuple[dict[str, str], str]]:
    """(digests, key) pairs, oldest first within each pipeline, pipelines in turn."""
    for pipeline in data.get("pipelines", {}).values():
        digests: dict[str, str] = pipeline.get("digests") or {}
        for key in [k for k in digests if k.startswith(MARKER_PREFIX) == markers]:
            yield digests, key


def _work_savers(data: dict[str, Any]) -> Iterator[tuple[dict[str, str], str]]:
    return _entries(data, markers=False)


def _markers(data: dict[str, Any]) -> Iterator[tuple[dict[str, str], str]]:
    return _entries(data, markers=True)


class StateFile(BaseModel):
    """The ``--state`` file: per Institution (namespace/name) what the operator keeps in status."""

    model_config = ConfigDict(extra="ignore")
    version: int = 1
    institutions: dict[str, InstitutionState] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StateFile:
        if not path.exists():
            return cls()
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def to_json(self, limit: int = MAX_PROGRESS_BYTES) -> str:
        """The file's text, under `limit` bytes: each Institution gets an equal share of it."""
        share = (limit - 1024) // max(1, len(self.institutions))
        institutions = {key: bounded(state, share) for key, state in self.institutions.items()}
        return json.dumps(
            {"version": self.version, "institutions": institutions},
            separators=(",", ":"),
            sort_keys=True,
            ensure_ascii=False,
        )


def write_atomic(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, fsync, rename: a reader sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
