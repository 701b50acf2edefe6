"""Offset paging within bounds (contracts/README.md, Security rule 4).

Paging stops at a short page or at `pagination.total`. It also stops, failing the listing, when
a page brings nothing new (a server ignoring `offset` would otherwise be read forever, or its
first page read again and again) or after `MAX_PAGES` pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from examsync.adapters.errors import InvalidResponse

MAX_PAGES = 1000


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    total: int | None = None  # pagination.total, when the answer gave it


def _fingerprint(row: Any) -> bytes:
    if isinstance(row, BaseModel):  # a typed row: what it was parsed from, as far as it kept it
        row = row.model_dump(mode="json")
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


async def read_all_pages(
    fetch: Callable[[int], Awaitable[Page]],
    limit: int,
    *,
    system: str,
    operation: str,
    max_pages: int = MAX_PAGES,
) -> list[Any]:
    """Every row, page by page from offset 0 (`fetch(offset)` reads one page of `limit` rows).

    Raises InvalidResponse when a page brings no row not seen before, or past `max_pages` pages.
    """
    rows: list[Any] = []
    seen: set[bytes] = set()
    offset = 0
    for _ in range(max_pages):
        page = await fetch(offset)
        fresh = []
        for row in page.rows:
            key = _fingerprint(row)
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        if page.rows and not fresh:
            raise InvalidResponse(system, operation, f"paging: the page at offset {offset} brought nothing new")
        rows.extend(fresh)
        offset += len(page.rows)
        if len(page.rows) < limit or (page.total is not None and offset >= page.total):
            return rows
    raise InvalidResponse(system, operation, f"paging: more than {max_pages} pages")
