"""FS detail records (contracts/fs.md) as the FS simulator serves them: one builder for the
seeds, the test support and the benchmarks, each giving what its assessment is about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from examsync.domain.fs import encode_id

OSLO = ZoneInfo("Europe/Oslo")


def assessment(
    institution: str,
    emnekode: str,
    title: str,
    start: datetime,
    *,
    minutes: int = 240,
    system: str = "INSPERA",
    stedkode: str | None = None,
    arstall: int | None = None,
    vurdkomb: str = "SKR",
    vurdtid: str = "HØST",
    deadline_days: int = 21,
    responsibles: Sequence[dict[str, Any]] = (),
    candidates: Sequence[dict[str, Any]] = (),
    **fields: Any,
) -> dict[str, Any]:
    """One assessment's detail record; `fields` adds or replaces any other field (`kommisjoner`,
    `sistEndret`, ...). The end is `minutes` after `start` in absolute time (wall-clock arithmetic
    would be an hour off across a DST change), in Oslo time."""
    year = arstall if arstall is not None else start.year
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(OSLO)
    record: dict[str, Any] = {
        "id": encode_id(
            institution, emnekode, versjonskode="1", vurdkombkode=vurdkomb, arstall=year, vurdtidkode=vurdtid
        ),
        "institusjonsnr": institution,
        "emnekode": emnekode,
        "versjonskode": "1",
        "vurdkombkode": vurdkomb,
        "arstall": year,
        "vurdtidkode": vurdtid,
        "vurdtidkodeReell": vurdtid,
        "emnetittel": title,
        "vurderingsform": "SKRIFTLIG",
        "eksamenssystem": system,
        "sensursystem": system,
        "begrunnelsessystem": None,
        "stedkode": stedkode or f"{institution}_15_10_0",
        "start": start.isoformat(),
        "slutt": end.isoformat(),
        "varighetMinutter": minutes,
        "sensurfrist": (start + timedelta(days=deadline_days)).date().isoformat(),
        "eksamensansvarlige": list(responsibles),
        "kandidater": list(candidates),
    }
    record.update(fields)
    return record
