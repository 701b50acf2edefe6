"""`examsync sync` as a user runs it: a child process against the sandbox served by the test.

The child gets short retry delays (the same rules, less waiting) and `--allow-loopback` (the
sandbox is on loopback); everything else is the real command line, reading manifests written
from the sandbox's seeded Institutions.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults
from tests.support.paths import REPO

FAST_RETRIES = {"EXAMSYNC_RETRY_BASE_DELAY": "0.01"}


@dataclass
class Synced:
    code: int
    out: str
    err: str
    peak_rss_mib: float  # the child's own peak resident memory

    @property
    def institutions(self) -> dict[str, dict[str, Any]]:
        """The JSON report's Institutions by name (the run ended with a report)."""
        return {i["name"]: i for i in json.loads(self.out)["institutions"]}

    def failures(self, name: str) -> list[dict[str, str]]:
        failures: list[dict[str, str]] = self.institutions[name]["failures"]
        return failures

    def lines(self) -> list[dict[str, Any]]:
        """stderr's JSON lines: logs and audit records."""
        return [json.loads(line) for line in self.err.splitlines() if line.startswith("{")]

    def audit(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "examsync.audit"]


def write_manifests(
    sb: Sandbox,
    path: Path,
    names: Iterable[str],
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """The named Institutions (each optionally edited) and every seeded Secret, in one file."""
    wanted = set(names)
    docs = []
    for seeded in sb.manifests():
        if seeded["kind"] == "Institution" and seeded["metadata"]["name"] not in wanted:
            continue
        doc = copy.deepcopy(seeded)
        if doc["kind"] == "Institution" and edit is not None:
            edit(doc)
        docs.append(doc)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


async def sync(*args: str, env: dict[str, str] | None = None, timeout: float = 100.0) -> Synced:
    """`python -m examsync sync -o json --allow-loopback ARGS` (the sandbox listens on loopback);
    fails the test if it has not ended within `timeout`. The child is waited for in a thread
    (the sandbox goes on serving); scripts/peak_rss.py tells its own peak RSS."""
    args_ = [sys.executable, "-m", "examsync", "sync", "-o", "json", "--allow-loopback", *args]
    return await asyncio.to_thread(_run, args_, {**os.environ, **FAST_RETRIES, **(env or {})}, timeout)


PEAK_RSS = REPO / "scripts" / "peak_rss.py"


def _run(args: list[str], env: dict[str, str], timeout: float) -> Synced:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        # through a small wrapper: a child forked from this large process would report our peak RSS
        peak_file = Path(tmp) / "peak"
        proc = subprocess.Popen(
            [sys.executable, str(PEAK_RSS), str(peak_file), "--", *args],
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the command it runs

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        if killed.is_set():
            raise AssertionError(f"examsync sync had not ended after {timeout:.0f} s")
        out.seek(0)
        err.seek(0)
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
        return Synced(proc.returncode, out.read().decode(), err.read().decode(), peak)


async def streams_ended(faults: Faults, count: int = 1, timeout: float = 60.0) -> None:
    """Wait until the simulator has seen `count` streamed answers end (a client's close reaches the
    server only at its next write)."""
    async with asyncio.timeout(timeout):
        while len(faults.streams) < count:
            await asyncio.sleep(0.05)
