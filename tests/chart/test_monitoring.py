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

from tests.support.paths import REPO

CHART = REPO / "charts/examsync"
HELM = shutil.which("helm") or str(REPO / ".tools/bin/helm")

pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm not installed (scripts/tools/helm.sh)")


async def render(*sets: str) -> list[dict[str, Any]]:
    args = [HELM, "template", "examsync", str(CHART), "--namespace", "monitoring-test"]
    for value in sets:
        args += ["--set", value]
    result = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


async def test_monitoring_is_off_by_default() -> None:
    kinds = {doc["kind"] for doc in await render()}
    assert not kinds & {"PrometheusRule", "ServiceMonitor"}
    assert not [
        d for d in await render() if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
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

    (dashboards,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard")]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(p.name for p in (CHART / "files/dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == files
    for name in files:
        assert json.loads(dashboards["data"][name]) == json.loads((CHART / "files/dashboards" / name).read_text())


def rules_by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def shipped_rules() -> dict[str, dict[str, Any]]:
    rules = yaml.safe_load((CHART / "files/rules/examsync.rules.yaml").read_text())
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"]}


async def test_every_rule_matches_the_release_job_exactly() -> None:
    for sets, job in ((("fullnameOverride=exams-operator",), "exams-operator"), ((), "examsync")):
        rendered = rules_by_name(await render("prometheusRule.enabled=true", *sets))
        service = next(d for d in await render(*sets) if d["kind"] == "Service")
        assert service["metadata"]["name"] == job  # the Prometheus Operator's job label
        for name, rule in rendered.items():
            assert f'job="{job}"' in rule["expr"], name
            assert "job=~" not in rule["expr"], name
            if job != "examsync":
                assert 'job="examsync"' not in rule["expr"], name
        assert rendered["ExamsyncOperatorDown"]["expr"] == f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})'


async def test_operator_down_is_a_warning_after_ten_minutes() -> None:
    rule = rules_by_name(await render("prometheusRule.enabled=true"))["ExamsyncOperatorDown"]
    assert rule["for"] == "10m" and rule["labels"] == {"severity": "warning"}


async def test_rule_options() -> None:
    rendered = rules_by_name(
        await render(
            "prometheusRule.enabled=true",
            "prometheusRule.additionalLabels.team=exams",
            "prometheusRule.disabled.ExamsyncSuspendedTooLong=true",
            "prometheusRule.disabled.ExamsyncSyncStale=false",
            "prometheusRule.runbookBaseUrl=https://wiki.example.org/runbook",
        )
    )
    shipped = shipped_rules()
    assert set(rendered) == set(shipped) - {"ExamsyncSuspendedTooLong"}
    for name, rule in rendered.items():
        assert rule["labels"] == {**shipped[name]["labels"], "team": "exams"}, name
        anchor = shipped[name]["annotations"]["runbook_url"].partition("#")[2]
        assert rule["annotations"]["runbook_url"] == f"https://wiki.example.org/runbook#{anchor}"
        assert rule["expr"] == shipped[name]["expr"] and rule["for"] == shipped[name]["for"]


async def test_rule_names_in_the_values_schema_are_the_shipped_ones() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    rule_schema = schema["properties"]["prometheusRule"]["properties"]
    assert set(rule_schema["disabled"]["propertyNames"]["enum"]) == set(shipped_rules())
    values = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]
    for url in (r["annotations"]["runbook_url"] for r in shipped_rules().values()):
        assert url.partition("#")[0] == values["runbookBaseUrl"]


@pytest.mark.parametrize(
    "bad",
    [
        "prometheusRule.disabled.OperatorDown=true",
        "prometheusRule.additionalLabels.severity=critical",
        "prometheusRule.additionalLabels.institution=x",
        "prometheusRule.runbookBaseUrl=wiki/runbook",
    ],
)
async def test_rule_options_are_checked(bad: str) -> None:
    args = [HELM, "template", "examsync", str(CHART), "--set", bad]
    result = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "prometheusRule" in result.stderr
