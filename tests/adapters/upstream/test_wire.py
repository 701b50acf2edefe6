"""The aiohttp transport under httpx: a failure says truthfully whether the request was sent.

The retry rules resend a create only when it never left this process (httpx.ConnectError,
ConnectTimeout, PoolTimeout); every other failure after connecting must not look like one.
Each test talks to a raw TCP server on loopback that misbehaves in one exact way.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from examsync.adapters.errors import UpstreamError
from examsync.adapters.upstream.client import RetryPolicy, UpstreamClient
from examsync.adapters.upstream.wire import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_elapsed=10)


class RawServer:
    """Counts connections and requests (by their request line), and serves `handler` for each."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> str | None:
        """One request's line and headers (and a Content-Length body); None at the end of the connection."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(v) for k, _, v in (h.partition(":") for h in lines) if k.lower() == "content-length"), 0)
        if length:
            await reader.readexactly(length)
        self.requests.append(lines[0])
        return lines[0]


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    t = AiohttpTransport()
    yield t
    await t.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def send(transport: AiohttpTransport, url: str, method: str = "GET", read: float = 5.0) -> httpx.Response:
    request = httpx.Request(
        method,
        url,
        json={"a": 1} if method == "POST" else None,
        extensions={"timeout": {"connect": 5.0, "read": read, "pool": 5.0}},
    )
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_a_refused_connection_is_reported_as_not_sent(transport: AiohttpTransport) -> None:
    with pytest.raises(httpx.ConnectError):
        await send(transport, f"http://127.0.0.1:{free_port()}/x", "POST")


async def test_a_connection_dropped_after_the_request_is_not_reported_as_not_sent(
    transport: AiohttpTransport,
) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)  # the write arrived; the answer never leaves

    async with RawServer(drop) as server:
        with pytest.raises(httpx.TransportError) as caught:
            await send(transport, f"{server.url}/v1/test", "POST")
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    assert server.requests == ["POST /v1/test HTTP/1.1"]


async def test_a_create_whose_connection_drops_is_sent_once() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)

    async with RawServer(drop) as server:
        client = UpstreamClient("inspera", server.url, retry=FAST)
        try:
            with pytest.raises(UpstreamError, match="network error"):
                await client.request("POST", "/v1/test", operation="create_test", json={}, idempotent=False)
        finally:
            await client.aclose()
    assert server.requests == ["POST /v1/test HTTP/1.1"]


async def test_an_answer_that_never_comes_is_a_read_timeout_and_a_create_is_not_resent() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(30)

    async with RawServer(silent) as server:
        transport = AiohttpTransport()
        try:
            with pytest.raises(httpx.ReadTimeout):
                await send(transport, f"{server.url}/v1/test", "POST", read=0.2)
        finally:
            await transport.aclose()
        client = UpstreamClient("inspera", server.url, retry=FAST, timeout=httpx.Timeout(0.2))
        try:
            with pytest.raises(UpstreamError, match="timed out"):
                await client.request("POST", "/v1/test", operation="create_test", json={}, idempotent=False)
        finally:
            await client.aclose()
    assert len(server.requests) == 2  # one each: the create was not sent again


async def test_the_path_is_sent_exactly_as_encoded(transport: AiohttpTransport) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with RawServer(answer) as server:
        await send(transport, f"{server.url}/eksamen/INSPERA/MTg1fHw%2FQUJD%3D%3D?x=a%2Bb")
    assert server.requests == ["GET /eksamen/INSPERA/MTg1fHw%2FQUJD%3D%3D?x=a%2Bb HTTP/1.1"]


async def test_a_body_read_whole_keeps_the_connection_and_one_left_unread_closes_it(
    transport: AiohttpTransport,
) -> None:
    big = b"x" * (1024 * 1024)

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := await server.read_request(reader)) is not None:
            if "/big" in line:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
            else:
                writer.write(OK)
            await writer.drain()

    async with RawServer(keep_alive) as server:
        for _ in range(3):
            await send(transport, f"{server.url}/small")
        assert server.connections == 1  # read whole: reused
        request = httpx.Request("GET", f"{server.url}/big")
        response = await transport.handle_async_request(request)
        await response.aclose()  # not read: that connection is not handed to the next request
        await send(transport, f"{server.url}/small")
        assert server.connections == 2


async def test_a_compressed_body_is_passed_on_as_it_came(transport: AiohttpTransport) -> None:
    """Decompression is the HTTP layer's (within the body cap), never the transport's."""
    import gzip

    packed = gzip.compress(b'{"a": 1}')

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed)
        await writer.drain()

    async with RawServer(gzipped) as server:
        request = httpx.Request("GET", f"{server.url}/x")
        response = await transport.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == packed


async def test_clients_of_one_host_share_its_connections_until_the_last_closes() -> None:
    """Institutions sharing an FS host share its connections (each request carries its own
    credentials); when the last client closes, nothing is held open."""
    closed = asyncio.Event()

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await server.read_request(reader)
            except asyncio.IncompleteReadError:  # the client closed the connection
                closed.set()
                return
            writer.write(OK)
            await writer.drain()

    async with RawServer(keep_alive) as server:
        clients = [UpstreamClient("fs", server.url, auth=httpx.BasicAuth(f"user{n}", "pw")) for n in range(3)]
        for _ in range(2):
            for client in clients:
                await client.request("GET", "/eksamen/liste", operation="list")
        for client in clients[:2]:
            await client.aclose()
        await clients[2].request("GET", "/eksamen/liste", operation="list")
        assert server.connections == 1 and len(server.requests) == 7
        assert not closed.is_set()
        await clients[2].aclose()
        await asyncio.wait_for(closed.wait(), 10)
