"""The JSON log line: traceback as one string without exception text, kopf's records reshaped,
the institution from the task's context, audit records with the line's envelope."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from examsync.kube.kopf_logs import KopfRecords, install
from examsync.logs import JsonFormatter, set_institution, setup_logging, traceback_text

PERSONAL = "Ola Nordmann 01019912345"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    install(setup_logging("info", out))
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _fails() -> None:
    try:
        {}["x"]
    except KeyError as exc:
        raise ValueError(PERSONAL) from exc


def test_traceback_has_frames_and_types_of_the_whole_chain_but_no_text() -> None:
    try:
        _fails()
    except ValueError:
        text = traceback_text(*sys.exc_info())
    assert text.startswith("Traceback (most recent call last):\n")
    assert "direct cause" in text and text.index("KeyError") < text.index("ValueError")
    assert "in _fails" in text and text.rstrip().endswith("ValueError")
    assert PERSONAL not in text and "'x'" not in text.split("\n")[-1]


def test_a_logged_exception_is_one_line_with_a_traceback_field(stream: io.StringIO) -> None:
    try:
        _fails()
    except ValueError:
        logging.getLogger("examsync.test").exception("it failed")
    (line,) = lines(stream)
    assert line["error"] == "ValueError" and line["traceback"].startswith("Traceback")
    assert PERSONAL not in stream.getvalue()


def _kopf_record(message: str, level: int = logging.INFO, exc: bool = False) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", level, __file__, 1, message, None, sys.exc_info() if exc else None)
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no event is posted from a unit test
    record.settings = settings
    record.k8s_skip = False
    record.k8s_ref = {"apiVersion": "examsync.io/v1alpha1", "kind": "Institution", "name": "uio", "namespace": "ns"}
    return record


def test_kopf_records_lose_the_settings_and_name_the_institution() -> None:
    record = _kopf_record("Adding the finalizer, thus preventing the actual deletion.")
    assert KopfRecords().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["institution"] == "ns/uio"
    assert not {"settings", "k8s_skip", "k8s_ref"} & set(line)


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'wake' succeeded.",
        "Daemon 'reconcile' succeeded.",
        "Creation is processed: 1 succeeded; 0 failed.",
        "Resuming is superseded by update: 1 succeeded; 0 failed; 0 left to the moment.",
    ],
)
def test_per_event_messages_are_debug(message: str, stream: io.StringIO) -> None:
    logging.getLogger("kopf.objects").handle(_kopf_record(message))
    assert stream.getvalue() == ""  # info level: dropped
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("kopf.objects").handle(_kopf_record(message))
    (line,) = lines(stream)
    assert line["level"] == "debug" and line["message"] == message


def test_activities_and_other_messages_keep_their_level(stream: io.StringIO) -> None:
    logging.getLogger("kopf.activities.startup").info("Activity 'startup' succeeded.")
    logging.getLogger("kopf.objects").handle(_kopf_record("Timer 'x' did not exit in time.", logging.WARNING))
    assert [line["level"] for line in lines(stream)] == ["info", "warning"]


def test_kopf_failure_messages_lose_the_exception_text() -> None:
    try:
        raise RuntimeError(PERSONAL)
    except RuntimeError:
        record = _kopf_record(
            f"Handler 'x' failed with an exception and will try again in 60 seconds: {PERSONAL}", logging.ERROR, True
        )
    KopfRecords().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Handler 'x' failed with an exception and will try again in 60 seconds (RuntimeError)"
    assert PERSONAL not in json.dumps(line)


async def test_the_institution_follows_the_task_that_works_on_it(stream: io.StringIO) -> None:
    log = logging.getLogger("examsync.test")

    async def work(key: str) -> None:
        set_institution(key)
        await asyncio.sleep(0)
        log.info("step", extra={"n": 1})
        await asyncio.create_task(asyncio.sleep(0))
        log.info("audit", extra={"audit": {"key": "fs-inspera:abc", "action": "created"}})

    await asyncio.gather(work("a/one"), work("b/two"))
    log.info("outside")
    got = lines(stream)
    assert sorted((line["message"], line.get("institution")) for line in got) == [
        ("audit", "a/one"),
        ("audit", "b/two"),
        ("outside", None),
        ("step", "a/one"),
        ("step", "b/two"),
    ]
    audit = [line for line in got if line["message"] == "audit"]
    assert all(
        line["key"] == "fs-inspera:abc"
        and line["logger"] == "examsync.test"
        and line["time"]
        and line["level"] == "info"
        for line in audit
    )
