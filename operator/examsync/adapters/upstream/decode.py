"""What a read answer holds: the contract's model, a JSON document, or the repeatable part of an
error. A body of another shape fails that item only, naming field paths, never values."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from examsync.adapters.errors import InvalidResponse
from examsync.adapters.upstream.body import JsonRefused, decode_json, json_problem
from examsync.adapters.upstream.error_text import UpstreamText

M = TypeVar("M", bound=BaseModel)

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def upstream_text(response: httpx.Response) -> UpstreamText:
    """The code and message an error answer carries, as far as they may be repeated (never the body)."""
    try:
        payload = decode_json(response.content)
    except JsonRefused:
        return UpstreamText()
    return UpstreamText.from_payload(payload, response.status_code)


def shape_error(system: str, operation: str, exc: ValidationError, status: int | None = None) -> InvalidResponse:
    """InvalidResponse naming where the body differs from the contract (field paths, never values;
    a key that is not a field name, i.e. data, is left out too)."""
    problem = json_problem(exc)
    if problem is not None:
        return InvalidResponse(system, operation, problem, status)
    fields = sorted(
        {
            ".".join(p for p in e["loc"] if isinstance(p, str) and _FIELD_NAME.fullmatch(p)) or "body"
            for e in exc.errors()
        }
    )
    return InvalidResponse(system, operation, f"unexpected response shape at {', '.join(fields[:5])}", status)


def parse_json(system: str, operation: str, response: httpx.Response, model: type[M]) -> M:
    """Parse a body into the contract's model; a mismatch (or a body that is not JSON, or is nested
    too deep) is InvalidResponse for that item only."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise shape_error(system, operation, exc, response.status_code) from None


def json_body(system: str, operation: str, response: httpx.Response) -> Any:
    """The JSON document a response holds; InvalidResponse when it is not JSON or nested too deep."""
    try:
        return decode_json(response.content)
    except JsonRefused as exc:
        raise InvalidResponse(system, operation, str(exc), response.status_code) from None
