"""A real Prometheus scrapes the operator's metrics after a real failing run and evaluates the
shipped alert rules (with short `for:`): ExamsyncInstitutionNotReady becomes pending."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from examsync import metrics
from tests.support.paths import REPO
from tests.support.probe import Probe, inspera_world, seed_fs

RULES = REPO / "charts/examsync/files/rules/examsync.rules.yaml"

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not installed (scripts/tools/promtool.sh installs it)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def short_rules(target: Path) -> None:
    """The shipped rules with every `for:` cut to 1m: long enough to stay pending during the test."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "1m"
    target.write_text(yaml.safe_dump(rules))


async def poll(client: httpx.AsyncClient, path: str, until: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(path)
            if response.status_code == 200:
                last = response.json()["data"]
                found = until(last)
                if found:
                    return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path}: condition not met in {timeout}s; last answer: {last}")


async def test_institution_not_ready_alert_goes_pending(probe: Probe, tmp_path: Path) -> None:
    seed_fs(probe.sandbox)
    # a real run whose FS Secret is wrong: FS answers 401, the run fails and is Stalled
    report = await probe.run(probe.spec(slack=False, humio=False), probe.secrets(fs_password="wrong"))
    assert report.failed and report.is_stalled
    assert "HTTP 401" in (report.pipelines["fs-inspera"].fatal or "")
    assert inspera_world(probe.sandbox).writes == {}  # nothing written after FS refused us
    metrics.record_run(probe.institution, report, probe.spec())
    metrics.set_view(probe.institution, metrics.conditions_for(report), suspended=False, interval_seconds=300)

    server, thread = metrics.start_server(0, addr="127.0.0.1")
    metrics_port = server.server_port
    prom_port = free_port()
    short_rules(tmp_path / "rules.yaml")
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
                "rule_files": [str(tmp_path / "rules.yaml")],
                "scrape_configs": [
                    {"job_name": "examsync", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
                ],
            }
        )
    )
    log = (tmp_path / "prometheus.log").open("wb")
    prometheus = await asyncio.create_subprocess_exec(
        *[
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}", timeout=5) as client:
            # the first scrape can take ~12 s after start
            await poll(
                client,
                "/api/v1/targets",
                lambda data: [t for t in data["activeTargets"] if t["health"] == "up"],
                timeout=50,
            )

            def not_ready(data: dict[str, Any]) -> list[dict[str, Any]]:
                return [
                    a
                    for a in data["alerts"]
                    if a["labels"]["alertname"] == "ExamsyncInstitutionNotReady"
                    and a["labels"].get("institution") == probe.institution
                    and a["state"] in ("pending", "firing")
                ]

            alerts = await poll(client, "/api/v1/alerts", not_ready, timeout=45)
            assert alerts[0]["labels"]["severity"] == "warning"
            assert probe.institution in alerts[0]["annotations"]["description"]
            assert alerts[0]["annotations"]["runbook_url"].endswith("runbook.md#examsyncinstitutionnotready")
            # Stalled too; the operator itself is up (job "examsync"), so ExamsyncOperatorDown stays quiet
            data = (await client.get("/api/v1/alerts")).json()["data"]
            names = {a["labels"]["alertname"] for a in data["alerts"]}
            assert "ExamsyncInstitutionStalled" in names
            assert "ExamsyncOperatorDown" not in names
    finally:
        prometheus.terminate()
        try:
            await asyncio.wait_for(prometheus.wait(), 15)
        except TimeoutError:
            prometheus.kill()
            await asyncio.wait_for(prometheus.wait(), 5)
        log.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        metrics.forget(probe.institution)
