"""The chart's monitoring templates: off by default, and when on, the shipped rules and dashboards."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/examsync"
HELM = shutil.which("helm") or str(ROOT / ".tools/bin/helm")

pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm not installed (scripts/tools/helm.sh)")


async def render(*sets: str) -> list[dict[str, Any]]:
    args = [HELM, "template", "examsync", str(CHART), "--namespace", "monitoring-test"]
    for value in sets:
        args += ["--set", value]
    result = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


async def test_monitoring_is_off_by_default() -> None:
    kinds = {doc["kind"] for doc in await render()}
    assert not kinds & {"PrometheusRule", "ServiceMonitor"}
    assert not [
        d
        for d in await render()
        if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]


async def test_monitoring_templates_render_the_shipped_files() -> None:
    docs = await render(
        "prometheusRule.enabled=true",
        "serviceMonitor.enabled=true",
        "grafanaDashboard.enabled=true",
        "metrics.port=9500",
    )
    by_kind = {doc["kind"]: doc for doc in docs if doc["kind"] in ("PrometheusRule", "ServiceMonitor")}
    rules = yaml.safe_load((CHART / "files/rules/examsync.rules.yaml").read_text())
    assert by_kind["PrometheusRule"]["spec"] == rules

    monitor = by_kind["ServiceMonitor"]["spec"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert monitor["endpoints"][0]["port"] == "metrics"
    assert any(p["name"] == "metrics" and p["port"] == 9500 for p in service["spec"]["ports"])
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()

    (dashboards,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(p.name for p in (CHART / "files/dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == files
    for name in files:
        assert json.loads(dashboards["data"][name]) == json.loads(
            (CHART / "files/dashboards" / name).read_text()
        )
