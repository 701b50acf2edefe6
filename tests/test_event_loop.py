"""The operator and `examsync sync` run on uvloop where it is installed."""

from __future__ import annotations

import asyncio

import uvloop

from examsync import event_loop


def test_the_runner_runs_on_uvloop() -> None:
    async def loop_type() -> type[asyncio.AbstractEventLoop]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop())

    with event_loop.runner() as runner:
        assert issubclass(runner.run(loop_type()), uvloop.Loop)
