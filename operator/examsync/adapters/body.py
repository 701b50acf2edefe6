"""Reading and decoding upstream bodies within bounds (contracts/README.md, Security rules 2 and 5).

A body is read with a size cap: a larger `Content-Length` is refused before reading, and reading
stops at the cap (decompressed bytes count, so a small gzip bomb cannot grow past it either).
JSON is decoded by pydantic-core's parser, which refuses documents nested deeper than
`MAX_JSON_DEPTH` before building them.
"""

from __future__ import annotations

import zlib
from typing import Any

import httpx
from pydantic import ValidationError
from pydantic_core import from_json

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# pydantic-core's JSON parser (jiter) refuses nesting deeper than this; we rely on it, not on
# Python's recursion limit (the standard library's parser would raise RecursionError instead)
MAX_JSON_DEPTH = 200
# the encodings we read ourselves, with the cap applied to what they decompress to
ACCEPT_ENCODING = "gzip, deflate"


class BodyRefused(Exception):
    """The body is not read (or not read further): too large, or in an encoding we do not read."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class _Inflater:
    """gzip or zlib-deflate, decompressed chunk by chunk, never more than `room` bytes at once."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected

    def feed(self, data: bytes, room: int) -> bytes | None:
        """The bytes `data` decompresses to, or None when they would be more than `room`."""
        try:
            out = self._z.decompress(data, room + 1)
        except zlib.error:
            raise BodyRefused("response body is not valid gzip/deflate") from None
        return None if len(out) > room or self._z.unconsumed_tail else out


async def read_body(response: httpx.Response, limit: int = DEFAULT_MAX_BODY_BYTES) -> bytes:
    """The whole (decoded) body of a streamed response, at most `limit` bytes; raises BodyRefused."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise BodyRefused(f"response body of {_mib(int(declared))} refused (limit {_mib(limit)})")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise BodyRefused("response body in an encoding not asked for")
    inflater = _Inflater() if encoding not in ("identity", "") else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        room = limit - size
        data = inflater.feed(chunk, room) if inflater is not None else chunk
        if data is None or len(data) > room:
            raise BodyRefused(f"response body larger than {_mib(limit)}")
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def plain_response(response: httpx.Response, content: bytes) -> httpx.Response:
    """A fully read response holding the decoded `content` (the stream it came from is closed)."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
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
