"""The per-Institution daemon: sleeps until its next run or a change of the object, then steps.

One daemon per Institution, so a run never overlaps itself and a long run of one Institution
holds up no other. Every watch event of the object wakes it (``wake``); it then decides anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from examsync.kube import restore
from examsync.kube.api import ApiException
from examsync.kube.config import Shared
from examsync.kube.reconciler import InstitutionReconciler
from examsync.logs import set_institution

log = logging.getLogger("examsync.operator")

_WAKEUP = "examsync_wakeup"


def _wakeup(memo: Any) -> asyncio.Event:
    event = getattr(memo, _WAKEUP, None)
    if event is None:
        event = asyncio.Event()
        setattr(memo, _WAKEUP, event)
    return event


def wake(memo: Any) -> None:
    """Called on every watch event of the Institution (spec, annotations, deletion, ...)."""
    _wakeup(memo).set()


async def _sleep(stopped: Any, wakeup: asyncio.Event, timeout: float | None) -> None:
    waiters = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(wakeup.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _stop_when(stopped: Any, stop: asyncio.Event) -> None:
    await stopped.wait()
    stop.set()  # the run stops taking new items; calls in flight finish or time out


async def serve(shared: Shared, *, name: str, namespace: str, body: Mapping[str, Any], stopped: Any, memo: Any) -> None:
    """The daemon body. ``body`` is kopf's live view: always the latest object seen."""
    reconciler = InstitutionReconciler(shared, name, namespace, body.get("status"))
    set_institution(reconciler.key)  # every line this daemon (and what it starts) logs is about it
    restore.from_status(reconciler.key, body)  # its alerts hold from now, not from its next run
    wakeup = _wakeup(memo)
    stop = asyncio.Event()
    stopper = asyncio.create_task(_stop_when(stopped, stop))
    first = True
    try:
        while not stopped:
            wakeup.clear()
            try:
                delay = await reconciler.step(body, first=first, stop=stop)
            except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
                log.warning(
                    "status write failed; trying again",
                    extra={
                        "institution": reconciler.key,
                        "error": type(exc).__name__,
                        "status": getattr(exc, "status", None),
                    },
                )
                delay = shared.config.api_retry_seconds
            first = False
            if delay == 0.0:
                continue
            await _sleep(stopped, wakeup, delay)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        if stopped.reason is not None and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            reconciler.forget()
