"""Reading and decoding upstream bodies within bounds (contracts/README.md, Security rules 2 and 5).

A body is read with a size cap: a larger `Content-Length` is refused before reading, and reading
stops at the cap (decompressed bytes count, so a small gzip bomb cannot grow past it either).
What all bodies being read hold at once is bounded too (`BodyBudget`), so an upstream answering
every request hugely costs no more memory than one answering one request so. JSON is decoded by
pydantic-core's parser, which refuses documents nested deeper than `MAX_JSON_DEPTH` before
building them.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from pydantic import ValidationError
from pydantic_core import from_json

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# What any body may buffer without a large-body slot, how many bodies may buffer more at once,
# and how many of them one host may have: 2 x 16 MiB (+ 1 MiB per connection) is the most bodies
# being read ever hold together, and one upstream never holds every slot.
FREE_BODY_BYTES = 1024 * 1024
LARGE_BODY_SLOTS = 2
LARGE_BODY_SLOTS_PER_HOST = 1
# pydantic-core's JSON parser (jiter) refuses nesting deeper than this; we rely on it, not on
# Python's recursion limit (the standard library's parser would raise RecursionError instead)
MAX_JSON_DEPTH = 200
# the encodings we read ourselves, with the cap applied to what they decompress to
ACCEPT_ENCODING = "gzip, deflate"
_INFLATE_STEP = 64 * 1024  # decompressed bytes produced at a time


class BodyRefused(Exception):
    """The body is not read (or not read further): too large, or in an encoding we do not read."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class BodyBudget:
    """A process-wide bound on the bytes held by bodies being read.

    Every body may buffer `free_bytes`; to buffer more it first takes one of `large_slots`
    slots (at most `per_host` of them for one host) and keeps it until it is read whole or given
    up. So however many upstreams answer hugely at once, bodies being read hold at most
    `large_slots` x the body cap, plus `free_bytes` per open connection, and an upstream
    answering hugely and slowly cannot keep the others' large bodies waiting. A body that needs a
    slot waits for one within its call's deadline (the caller's timeout scope), and stops reading
    from its connection meanwhile.

    It cannot deadlock: slots are taken in one order (the host's, then the process's), and a
    holder waits for nothing else while it holds them (its connection is open, its answer
    coming); it lets go however reading ends: the whole body, the cap, a read timeout, the call's
    deadline (cancellation) or a dropped connection.
    """

    def __init__(
        self,
        free_bytes: int = FREE_BODY_BYTES,
        large_slots: int = LARGE_BODY_SLOTS,
        per_host: int = LARGE_BODY_SLOTS_PER_HOST,
    ) -> None:
        self.free_bytes = free_bytes
        self.large_slots = large_slots
        self.per_host = min(per_host, large_slots)
        self.held = 0  # large-body slots held now
        self.most_held = 0  # the most held at once (tests read it)
        # asyncio primitives belong to one event loop; a process may run several in turn
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    def semaphore(self, host: str | None) -> asyncio.Semaphore:
        """The slots of `host`, or (None) of the whole process, in the running event loop."""
        loop = asyncio.get_running_loop()
        semaphores = self._semaphores.setdefault(loop, {})
        key = "" if host is None else f"host {host}"
        if key not in semaphores:
            semaphores[key] = asyncio.Semaphore(self.large_slots if host is None else self.per_host)
        return semaphores[key]

    @contextlib.asynccontextmanager
    async def lease(self, host: str) -> AsyncIterator[BodyLease]:
        """What one body from `host` holds while it is read; its slots are released on leaving."""
        lease = BodyLease(self, host)
        try:
            yield lease
        finally:
            lease.release()


class BodyLease:
    """The slots one body being read holds (none while it is within the free allowance)."""

    def __init__(self, budget: BodyBudget, host: str) -> None:
        self._budget = budget
        self._host = host
        self._taken: tuple[asyncio.Semaphore, ...] = ()

    async def allow(self, size: int) -> None:
        """Return once this body may hold `size` bytes (at once, or after waiting for a slot)."""
        if size <= self._budget.free_bytes or self._taken:
            return
        host_slot, process_slot = self._budget.semaphore(self._host), self._budget.semaphore(None)
        await host_slot.acquire()  # cancelled while waiting: nothing is held
        try:
            await process_slot.acquire()
        except BaseException:
            host_slot.release()
            raise
        self._taken = (process_slot, host_slot)
        self._budget.held += 1
        self._budget.most_held = max(self._budget.most_held, self._budget.held)

    def release(self) -> None:
        if self._taken:
            for semaphore in self._taken:
                semaphore.release()
            self._taken = ()
            self._budget.held -= 1


BODY_BUDGET = BodyBudget()  # the process's; every UpstreamClient reads within it


class _Inflater:
    """gzip or zlib-deflate, decompressed chunk by chunk in pieces of at most `_INFLATE_STEP`."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """What `data` decompresses to, piece by piece (a bomb never inflates at once)."""
        pending = data
        while True:
            try:
                out = self._z.decompress(pending, _INFLATE_STEP)
            except zlib.error:
                raise BodyRefused("response body is not valid gzip/deflate") from None
            pending = self._z.unconsumed_tail
            if out:
                yield out
            if not pending and len(out) < _INFLATE_STEP:
                return


async def read_body(
    response: httpx.Response, limit: int = DEFAULT_MAX_BODY_BYTES, budget: BodyBudget = BODY_BUDGET
) -> bytes:
    """The whole (decoded) body of a streamed response, at most `limit` bytes, read within
    `budget`; raises BodyRefused."""
    declared = response.headers.get("Content-Length", "")
    size_known = declared.strip().isdigit()
    if size_known and int(declared) > limit:
        raise BodyRefused(f"response body of {_mib(int(declared))} refused (limit {_mib(limit)})")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise BodyRefused("response body in an encoding not asked for")
    inflater = _Inflater() if encoding not in ("identity", "") else None
    chunks: list[bytes] = []
    size = 0
    async with budget.lease(response.url.netloc.decode("ascii")) as lease:
        if size_known:
            await lease.allow(int(declared))  # a large body waits before reading, not halfway
        async for chunk in response.aiter_raw():
            for piece in inflater.pieces(chunk) if inflater is not None else (chunk,):
                if size + len(piece) > limit:
                    chunks.clear()  # not kept alive by the exception's frame
                    raise BodyRefused(f"response body larger than {_mib(limit)}")
                await lease.allow(size + len(piece))
                chunks.append(piece)
                size += len(piece)
        return b"".join(chunks)  # joined within the lease: the copy counts against the slot


def plain_response(response: httpx.Response, content: bytes) -> httpx.Response:
    """A fully read response holding the decoded `content` (the stream it came from is closed)."""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(response.status_code, headers=headers, content=content, request=response.request)


class JsonRefused(ValueError):
    """Not JSON, or JSON nested deeper than MAX_JSON_DEPTH."""


def decode_json(content: bytes) -> Any:
    """The JSON document in `content`; raises JsonRefused naming why (never quoting the body)."""
    try:
        return from_json(content)
    except ValueError as exc:
        raise JsonRefused(_why(str(exc))) from None


def json_problem(exc: ValidationError) -> str | None:
    """For a pydantic error from `model_validate_json`: why the body is not usable JSON, or None
    when it is JSON of the wrong shape."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return _why(str(error.get("msg", "")))
    return None


def _why(parser_message: str) -> str:
    if "recursion limit" in parser_message:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    return "response is not JSON"
