"""JSON-lines logging for the operator and the CLI (stderr)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed in `extra` and is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

# The Institution (`namespace/name`) the current task works on: every line logged in it, by any
# logger, carries it as `institution` (asyncio tasks inherit it from the task that made them).
_INSTITUTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("examsync_institution", default=None)


def set_institution(key: str | None) -> contextvars.Token[str | None]:
    """From now on in this task (and the tasks it starts), lines are about ``key``."""
    return _INSTITUTION.set(key)


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def traceback_text(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> str:
    """The traceback as one string, as Python prints it (chained exceptions included) but with
    each exception's type only: its text can carry upstream payloads (URLs, names)."""
    # newest first: (the exception's block, how it follows from the one before it)
    blocks: list[tuple[str, str | None]] = []
    seen: set[int] = set()
    kind, current, frames = exc_type, exc, tb
    while True:
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        block = ("Traceback (most recent call last):\n" + "".join(traceback.format_tb(frames)) if frames else "") + name
        link: str | None = None
        older: BaseException | None = None
        if current is not None and id(current) not in seen:
            seen.add(id(current))
            if current.__cause__ is not None:
                link, older = _CAUSE, current.__cause__
            elif current.__context__ is not None and not current.__suppress_context__:
                link, older = _CONTEXT, current.__context__
        blocks.append((block, link))
        if older is None:
            break
        kind, current, frames = type(older), older, older.__traceback__
    parts: list[str] = []
    for block, link in reversed(blocks):
        if link is not None:
            parts.append(link)
        parts.append(block)
    return "\n\n".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            # an audit record's own fields are the line's keys; the line's time, level, logger and
            # message are added where the record has no such field of its own
            line = {**audit, **{k: v for k, v in out.items() if k not in audit}, "logger": record.name}
            if "institution" not in line and (institution := _INSTITUTION.get()) is not None:
                line["institution"] = institution
            return json.dumps(line, default=str, ensure_ascii=False)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if "institution" not in out and (institution := _INSTITUTION.get()) is not None:
            out["institution"] = institution
        if record.exc_info and record.exc_info[0] is not None:
            # the type and the frames only: exception text can carry upstream payloads
            out.setdefault("error", record.exc_info[0].__name__)
            out["traceback"] = traceback_text(*record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """JSON lines on stderr for every logger; ``level`` (any case) is the root logger's level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO; URLs can carry FS ids and FEIDE ids (personal data)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
