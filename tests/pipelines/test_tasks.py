"""`settle`: concurrent work (pipelines, discovery reads) never outlives the call that started it."""

from __future__ import annotations

import asyncio

import pytest

from examsync.pipelines.tasks import settle


async def test_an_error_is_raised_only_once_every_other_task_has_ended() -> None:
    ended: list[str] = []

    async def fails() -> str:
        raise ValueError("first")

    async def slow() -> str:
        await asyncio.sleep(0.05)
        ended.append("slow")
        return "slow"

    with pytest.raises(ValueError, match="first"):
        await settle([fails(), slow()])
    assert ended == ["slow"]


async def test_a_cancelled_settle_cancels_its_tasks_and_waits_for_them() -> None:
    cleaned: list[int] = []
    started = asyncio.Event()

    async def long(n: int) -> int:
        try:
            started.set()
            await asyncio.sleep(3600)
            return n
        finally:
            await asyncio.sleep(0.01)  # cleaning up takes a moment
            cleaned.append(n)

    outer = asyncio.ensure_future(settle([long(1), long(2)]))
    await started.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert sorted(cleaned) == [1, 2]  # both ended before the cancellation went on
