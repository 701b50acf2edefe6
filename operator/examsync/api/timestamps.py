"""Times as the status holds them: RFC 3339 in UTC to the second (``2026-11-23T06:00:02Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime(FORMAT) if value.tzinfo else value.strftime(FORMAT)


# Kept to the microsecond in memory (items are ordered by it), written to the second.
Timestamp = Annotated[datetime, PlainSerializer(timestamp, return_type=str)]
