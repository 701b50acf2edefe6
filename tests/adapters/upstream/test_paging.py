"""The paging rule on its own: short page, `pagination.total`, nothing new, at most 1000 pages."""

from __future__ import annotations

import pytest

from examsync.adapters.errors import InvalidResponse
from examsync.adapters.upstream.paging import MAX_PAGES, Page, read_all_pages


async def _read(
    rows_at: dict[int, list[int]] | None = None, total: int | None = None, endless: bool = False, limit: int = 2
) -> tuple[list[int], list[int]]:
    asked: list[int] = []

    async def fetch(offset: int) -> Page:
        asked.append(offset)
        if endless:
            return Page([offset, offset + 1], total)
        return Page((rows_at or {}).get(offset, []), total)

    return await read_all_pages(fetch, limit, system="x", operation="list"), asked


async def test_paging_stops_at_a_short_page_and_at_the_total() -> None:
    assert await _read({0: [1, 2], 2: [3]}) == ([1, 2, 3], [0, 2])
    assert await _read({0: [1, 2], 2: [3, 4]}, total=4) == ([1, 2, 3, 4], [0, 2])


async def test_paging_fails_when_a_page_brings_nothing_new() -> None:
    with pytest.raises(InvalidResponse, match="brought nothing new"):
        await _read({0: [1, 2], 2: [1, 2]}, total=10)


async def test_paging_fails_after_1000_pages() -> None:
    asked: list[int] = []

    async def fetch(offset: int) -> Page:
        asked.append(offset)
        return Page([offset, offset + 1])  # always a full page of new rows

    with pytest.raises(InvalidResponse, match=f"more than {MAX_PAGES} pages"):
        await read_all_pages(fetch, 2, system="x", operation="list")
    assert len(asked) == MAX_PAGES == 1000
