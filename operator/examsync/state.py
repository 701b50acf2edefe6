"""Durable progress between runs: FS watermark, retry set, pending creates and digests.

The operator keeps it in ``status``; ``examsync sync --state FILE`` keeps it in a JSON file.
It holds identifiers, times and digests only, never personal data.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# Bounds keep status objects small; when the retry set would overflow the watermark is held back
# instead (see PipelineState.advance), so nothing is dropped.
MAX_RETRY = 1000
MAX_DIGESTS = 5000
# Digest keys that mark facts rather than save work (an assessor this integration added): never
# dropped to save space, or a later removal would no longer know it may remove them.
MARKER_PREFIX = "assessor"


class PendingCreate(BaseModel):
    """A create sent (or about to be) whose link to the source is not yet confirmed."""

    model_config = ConfigDict(extra="ignore")
    title: str
    subtitle: str | None = None
    since: datetime


class PipelineState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    watermark: datetime | None = Field(default=None, description="Start of the last run whose list call succeeded.")
    retry: list[str] = Field(default_factory=list, description="Source ids to fetch again.")
    pending: dict[str, PendingCreate] = Field(default_factory=dict, description="Creates not yet linked.")
    digests: dict[str, str] = Field(default_factory=dict, description="Digest of fields last written, per target.")

    def advance(self, run_started: datetime | None, failed_ids: list[str], listed_ok: bool) -> PipelineState:
        """The state after a run: the new watermark and retry set.

        If the retry set would overflow its bound, the watermark stays where it was so the ids
        that did not fit are listed again by FS on the next run rather than lost.
        """
        retry = list(dict.fromkeys(failed_ids))
        watermark = self.watermark
        if listed_ok and run_started is not None:
            watermark = run_started
        if len(retry) > MAX_RETRY:
            retry = retry[:MAX_RETRY]
            watermark = self.watermark
        return self.model_copy(update={"watermark": watermark, "retry": retry,
                                       "digests": trim_digests(self.digests, MAX_DIGESTS)})


def trim_digests(digests: dict[str, str], limit: int) -> dict[str, str]:
    """At most `limit` digests, dropping the oldest first (a dropped digest costs one extra write);
    markers are kept whatever the limit."""
    if len(digests) <= limit:
        return digests
    droppable = [k for k in digests if not k.startswith(MARKER_PREFIX)]
    drop = set(droppable[: len(digests) - limit])
    return {k: v for k, v in digests.items() if k not in drop}


class InstitutionState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pipelines: dict[str, PipelineState] = Field(default_factory=dict)

    def pipeline(self, name: str) -> PipelineState:
        return self.pipelines.get(name) or PipelineState()


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

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True)


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
