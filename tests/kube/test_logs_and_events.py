"""The operator's stderr and its Events, against the emulator.

Logs: one JSON object per line for every logger, kopf's included, with `time`, `level`, `logger`,
`message`, and `institution` on each line about one Institution; never kopf's settings; a
traceback as one string field (the exception's type and frames, not its text); kopf's per-event
handler messages at debug. Events: reported by the component `examsync`, instance the pod's name.
"""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from examsync.kube import kopf_logs
from examsync.logs import setup_logging
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import NAMESPACE, Cluster, OperatorFactory, OperatorProcess, apply_all, idle_after, uio

POD = "examsync-7d9f8c6b5-x2x7q"
KEY = f"{NAMESPACE}/uio"
ENVELOPE = ("time", "level", "logger", "message")
# what kopf's settings look like once printed (the dump every kopf line carried)
SETTINGS_DUMP = ("OperatorSettings(", "PostingSettings(", "reporting_component")


def parse_lines(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line[:300]!r}") from None
        assert isinstance(obj, dict), line[:300]
        parsed.append(obj)
    return parsed


def busy_port() -> socket.socket:
    """A loopback port someone else listens on: the operator cannot serve /metrics there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def test_operator_logs_one_json_object_per_line_for_every_logger(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    with busy_port() as taken:  # the metrics server fails to start: a logged traceback
        async with OperatorProcess(
            cluster.url, tmp_path, log_level="info", env={"POD_NAME": POD}, metrics_port=taken.getsockname()[1]
        ) as proc:
            await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=60)
            await cluster.patch("uio", {"metadata": {"annotations": {"examsync.io/requested-at": "1"}}})
            await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=60)
        raw = proc.log_lines()

    lines = parse_lines(raw)
    assert lines
    for line in lines:
        assert all(isinstance(line.get(k), str) and line[k] for k in ENVELOPE), line
        assert line["level"] in ("info", "warning", "error"), line  # --log-level info: no debug line
    assert not any(marker in text for text in raw for marker in SETTINGS_DUMP)
    assert all("settings" not in line and "k8s_ref" not in line for line in lines)

    loggers = {line["logger"] for line in lines}
    assert any(name.startswith("kopf") for name in loggers), loggers  # kopf's own lines, in the same shape
    assert "examsync.audit" in loggers and "examsync.operator" in loggers
    # kopf's per-event handler messages are debug: none at info
    assert not [line for line in lines if line["logger"] == "kopf.objects" and line["message"].endswith(" succeeded.")]
    # the activities keep readable names
    assert any(line["message"] == "Activity 'startup' succeeded." for line in lines)

    # every line about the Institution says which
    process_wide = ("upstream hosts allowed", "metrics call failed")
    about = [line for line in lines if line["logger"].startswith("examsync.") and line["message"] not in process_wide]
    assert len(about) > 10
    assert {line.get("institution") for line in about} == {KEY}

    # the traceback: one string field with the frames and the type, the line's own envelope kept
    (failed,) = [line for line in lines if line["message"] == "metrics call failed"]
    assert failed["level"] == "error" and failed["error"] == "OSError"
    trace = failed["traceback"]
    assert isinstance(trace, str) and trace.startswith("Traceback (most recent call last):\n")
    assert "examsync/metrics.py" in trace and trace.rstrip().endswith("OSError")
    assert "Address already in use" not in trace  # the exception's text stays out

    # Events: component examsync, instance the pod's name, named after the component
    events = cluster.emulator.events("uio")
    assert len([e for e in events if e["reason"] == "RunFinished"]) == 2
    for event in events:
        assert event["reportingComponent"] == "examsync" and event["source"]["component"] == "examsync"
        assert event["reportingInstance"] == POD
        assert event["metadata"]["name"].startswith("examsync-")
        assert "kopf" not in json.dumps(event)


async def test_at_debug_level_kopf_handler_messages_are_debug_lines_about_the_institution(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    inst["spec"]["suspend"] = True  # no run needed: watch events call the handlers all the same
    await apply_all(cluster, inst, secrets)
    async with OperatorProcess(cluster.url, tmp_path, log_level="debug") as proc:
        await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("reason") == "Suspended")
        await cluster.patch("uio", {"metadata": {"labels": {"touched": "yes"}}})  # one more watch event

        def handled() -> bool:
            return any("\"Handler 'wake' succeeded.\"" in line for line in proc.log_lines())

        await cluster.wait_for(handled, timeout=30)
    raw = proc.log_lines()

    lines = parse_lines(raw)
    wake = [line for line in lines if line["message"] == "Handler 'wake' succeeded."]
    assert wake and all(line["level"] == "debug" and line["logger"] == "kopf.objects" for line in wake)
    assert all(line.get("institution") == KEY for line in wake)
    kopf_object_lines = [line for line in lines if line["logger"] == "kopf.objects"]
    assert all(line.get("institution") == KEY for line in kopf_object_lines)
    assert not any(marker in text for text in raw for marker in SETTINGS_DUMP)


# -- a kopf handler that fails: kopf's own exception line, in-process --------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    kopf_logs.install(setup_logging("info", stream))
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.looptime
async def test_kopf_failure_lines_carry_the_traceback_and_the_institution_but_not_the_exception_text(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox, log_stream: io.StringIO
) -> None:
    secret_text = "Kari Nordmann 01019912345"

    def failing_handler(registry: kopf.OperatorRegistry) -> None:
        @kopf.on.event("examsync.io", "v1alpha1", "institutions", registry=registry, id="probe")
        def probe(**_: Any) -> None:
            raise RuntimeError(secret_text)

    inst, secrets = uio(sandbox)
    inst["spec"]["suspend"] = True
    await apply_all(cluster, inst, secrets)
    async with operator(registry_hook=failing_handler):

        def failed() -> bool:
            return "Handler 'probe' failed" in log_stream.getvalue()

        await cluster.wait_for(failed, timeout=30)

    text = log_stream.getvalue()
    assert secret_text not in text
    lines = parse_lines(text.splitlines())
    failures = [line for line in lines if line["message"].startswith("Handler 'probe' failed")]
    assert failures
    for line in failures:
        assert line["logger"] == "kopf.objects" and line["level"] == "error"
        assert line["institution"] == KEY
        assert line["message"].endswith("(RuntimeError)")  # kopf's "...: <text>" cut to the type
        assert line["traceback"].startswith("Traceback (most recent call last):\n")
        assert "in probe" in line["traceback"] and line["traceback"].rstrip().endswith("RuntimeError")
        assert "settings" not in line and "k8s_ref" not in line
