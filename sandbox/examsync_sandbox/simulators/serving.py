"""What every sandbox simulator shares: a loopback aiohttp server with fault injection.

Each outside system's simulator (``simulators/<system>.py``, named as its client's adapter is)
builds an ``aiohttp.web.Application``; this module serves it and injects faults.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# A simulator app may set this to the body its system sends with an error status, so injected
# faults answer in the system's own error shape.
class ErrorBody(Protocol):
    def __call__(self, status: int) -> Any: ...


ERROR_BODY = web.AppKey("error_body", ErrorBody)


# A simulator app may set this to see each answer the fault layer gives in place of its own (the
# WISEflow simulator records it for the contract check, marked as injected).
class InjectedObserver(Protocol):
    def __call__(self, request: web.Request, response: web.StreamResponse) -> Awaitable[None]: ...


INJECTED_OBSERVER = web.AppKey("injected_observer", InjectedObserver)


@dataclass
class Faults:
    """Knobs a test or the benchmark turns; all off by default.

    `once` holds faults keyed by "METHOD path-prefix" that fire exactly once (e.g. fail the
    first link call): a list of actions such as "500", "reset", "timeout", "commit-then-timeout",
    "timeout-then-commit". `always` holds one action per key that fires on every match.
    A key ending in `$` matches that exact path only ("POST /v1/test$": the create, not the search).

    Hostile answers: "huge" (`huge_bytes` of body, announced by Content-Length), "huge-stream"
    (the same, chunked, no length), "trickle" (a 200 whose body comes one byte per
    `trickle_interval` seconds for `trickle_seconds`), "deep" (JSON nested `deep_levels` deep),
    "answer:NAME" (the status and JSON body `answers[NAME]`), "ignore-offset" (the request is
    served as if it had no `offset` query parameter). `streams` records how each streamed body
    ended: bytes written and whether the client went away before the end.
    """

    latency: float = 0.0  # seconds added to every request
    jitter: float = 0.0  # up to this many seconds more, drawn per request
    error_rate: float = 0.0  # share of requests answered 503
    rate_limit_rate: float = 0.0  # share answered 429 with Retry-After
    retry_after: float = 0.05
    slow_rate: float = 0.0  # share that sleep `slow_seconds` (past a client timeout)
    slow_seconds: float = 35.0
    reset_rate: float = 0.0  # share whose connection is dropped
    malformed_rate: float = 0.0  # share answered 200 with a body that is not JSON
    seed: int = 1
    once: dict[str, list[str]] = field(default_factory=dict)
    always: dict[str, str] = field(default_factory=dict)
    huge_bytes: int = 64 * 1024 * 1024
    trickle_interval: float = 0.5
    trickle_seconds: float = 300.0
    deep_levels: int = 100_000
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    streams: list[StreamEnd] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def take_once(self, method: str, path: str) -> str | None:
        for key, actions in self.once.items():
            if _matches(key, method, path) and actions:
                return actions.pop(0)
        for key, action in self.always.items():
            if _matches(key, method, path):
                return action
        return None


@dataclass(frozen=True)
class StreamEnd:
    """How a streamed answer ended: `sent` bytes of `total` written, `cut` if the client left."""

    path: str
    sent: int
    total: int
    cut: bool


async def _stream(
    request: web.Request, faults: Faults, total: int, *, declared: bool, chunk: int = 256 * 1024, interval: float = 0.0
) -> web.StreamResponse:
    """A 200 whose body of `total` bytes (JSON whitespace) is written chunk by chunk."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    if declared:
        response.content_length = total
    else:
        response.enable_chunked_encoding()
    sent, cut = 0, True
    try:
        await response.prepare(request)
        while sent < total:
            piece = min(chunk, total - sent)
            await response.write(b" " * piece)
            sent += piece
            if interval:
                await asyncio.sleep(interval)
        await response.write_eof()
        cut = False
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client went away: what a cap or a deadline is for
    finally:
        faults.streams.append(StreamEnd(request.path, sent, total, cut))
    return response


def _matches(key: str, method: str, path: str) -> bool:
    m, _, prefix = key.partition(" ")
    if m != method:
        return False
    return path == prefix[:-1] if prefix.endswith("$") else path.startswith(prefix)


def fault_middleware(faults: Faults, calls: Counter[str]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        calls[f"{request.method} {request.path}"] += 1
        calls["total"] += 1
        if faults.latency or faults.jitter:
            extra = faults._rng.uniform(0, faults.jitter) if faults.jitter else 0.0
            await asyncio.sleep(faults.latency + extra)
        action = faults.take_once(request.method, request.path)
        if action is None:
            if faults.roll(faults.error_rate):
                action = "503"
            elif faults.roll(faults.rate_limit_rate):
                action = "429"
            elif faults.roll(faults.slow_rate):
                action = "timeout"
            elif faults.roll(faults.reset_rate):
                action = "reset"
            elif faults.roll(faults.malformed_rate):
                action = "malformed"
        if action is None:
            return await handler(request)
        if action == "reset":
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("injected reset")
        if action == "timeout":
            await asyncio.sleep(faults.slow_seconds)
            return await handler(request)
        if action == "ignore-offset":
            query = {k: v for k, v in request.rel_url.query.items() if k != "offset"}
            return await handler(request.clone(rel_url=request.rel_url.with_query(query)))
        if action == "timeout-then-commit":
            # slow, not lost: the write lands after the client gave up (the body is read first)
            await request.read()
            await asyncio.sleep(faults.slow_seconds)
            return await handler(request)
        if action == "commit-then-reset":
            await handler(request)
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("injected reset after commit")
        response = await _injected_answer(request, handler, faults, action)
        observer = request.app.get(INJECTED_OBSERVER)
        if observer is not None:
            await observer(request, response)
        return response

    return middleware


async def _injected_answer(request: web.Request, handler: Handler, faults: Faults, action: str) -> web.StreamResponse:
    """The answer the fault layer gives in place of the simulator's own."""
    if action.isdigit():
        status = int(action)
        headers = {"Retry-After": str(faults.retry_after)} if status == 429 else {}
        return web.json_response(_error_body(request, status), status=status, headers=headers)
    if action == "malformed":
        return web.Response(text="{not json", content_type="application/json")
    if action in ("huge", "huge-stream"):
        return await _stream(request, faults, faults.huge_bytes, declared=action == "huge")
    if action == "trickle":
        total = max(1, int(faults.trickle_seconds / faults.trickle_interval))
        return await _stream(request, faults, total, declared=False, chunk=1, interval=faults.trickle_interval)
    if action == "deep":
        levels = faults.deep_levels
        return web.Response(text="[" * levels + "]" * levels, content_type="application/json")
    if action.startswith("answer:"):
        status, body = faults.answers[action.removeprefix("answer:")]
        return web.json_response(body, status=status)
    if action == "commit-then-timeout":
        # the write is stored, then the answer never arrives in time
        await handler(request)
        await asyncio.sleep(faults.slow_seconds)
        return web.json_response(_error_body(request, 504), status=504)
    raise ValueError(f"unknown fault action {action!r}")


def _error_body(request: web.Request, status: int) -> Any:
    """The body the simulated system sends with an error status (its own shape, where it has one)."""
    error_body = request.app.get(ERROR_BODY)
    return error_body(status) if error_body is not None else {"error": "injected"}


class SimServer:
    """Serves one simulator app on 127.0.0.1 with an OS-assigned port."""

    def __init__(
        self, app: web.Application, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.faults = faults or Faults()
        self.calls: Counter[str] = Counter()
        app.middlewares.insert(0, fault_middleware(self.faults, self.calls))
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def count(self, method: str, prefix: str) -> int:
        """Requests whose "METHOD path" starts with `method prefix`."""
        key = f"{method} {prefix}"
        return sum(n for k, n in self.calls.items() if k.startswith(key))
