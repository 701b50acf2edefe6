"""Every PromQL expression in the alert rules and the dashboard parses (promtool) and uses only
metric names the operator exports."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from examsync import metrics
from tests.support import render_rules
from tests.support.paths import REPO

RULES = REPO / "charts/examsync/files/rules/examsync.rules.yaml"
DASHBOARDS = sorted((REPO / "charts/examsync/files/dashboards").glob("*.json"))
NO_PROMTOOL = "promtool not installed (scripts/tools/promtool.sh installs it)"

# Grafana's variables, replaced by something PromQL accepts
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$institution": ".*", "$job": ".*"}
FUNCTIONS = {
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp_min",
    "clamp_max",
    "count",
    "count_over_time",
    "delta",
    "deriv",
    "floor",
    "histogram_quantile",
    "increase",
    "irate",
    "label_replace",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "quantile",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "bottomk",
    "vector",
    "last_over_time",
    "group",
}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}


def exported_names() -> set[str]:
    """Every series name the registry can expose, from its metric families and their types."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = {"up"}
    for family in metrics.registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def rule_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    def walk(node: Any) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                yield node.get("refId", "?"), node["expr"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for ref, expr in walk(panel):
                yield f"{path.name}: {panel['title']} {ref}", expr


def concrete(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (labels, strings, durations and functions removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?", text):
        word, call = match.group(0).rstrip("( \t"), match.group(1)
        if word in FUNCTIONS or word in KEYWORDS:
            continue  # an aggregation may be followed by `by (...)` before its parenthesis
        assert not call, f"unknown function {word} in {expr!r}"
        if not re.fullmatch(r"\d+[smhdwy]", word) and word not in ("e", "Inf", "NaN"):
            names.add(word)
    return names


ALL = [*rule_exprs(), *dashboard_exprs()]


def test_there_is_something_to_check() -> None:
    assert len(list(rule_exprs())) == 7
    assert DASHBOARDS and len(list(dashboard_exprs())) >= 12


@pytest.mark.parametrize(("where", "expr"), ALL, ids=[w for w, _ in ALL])
def test_expression_uses_only_exported_metrics(where: str, expr: str) -> None:
    names = metric_names(concrete(expr))
    assert names, f"{where}: selects no metric"
    unknown = names - exported_names()
    assert not unknown, f"{where}: not exported by the operator: {sorted(unknown)}"


def test_the_name_check_catches_a_typo() -> None:
    assert metric_names('sum by (institution) (rate(examsync_itemz_total{action="x"}[5m]))') == {"examsync_itemz_total"}
    assert "examsync_itemz_total" not in exported_names()
    assert {
        "examsync_items_total",
        "examsync_run_duration_seconds_bucket",
        "up",
        "examsync_institution_condition",
    } <= exported_names()


@pytest.mark.skipif(shutil.which("promtool") is None, reason=NO_PROMTOOL)
async def test_every_expression_parses(tmp_path: Path) -> None:
    # promtool parses recording rules' expressions: wrap each dashboard expression in one
    rules = [
        {"record": f"examsync:dashboard_expr_{n}", "expr": concrete(expr)}
        for n, (_, expr) in enumerate(dashboard_exprs())
    ]
    wrapped = tmp_path / "dashboard.rules.yaml"
    wrapped.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    for path in (RULES, wrapped):
        result = await asyncio.to_thread(
            subprocess.run,
            ["promtool", "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rules) if path == wrapped else 7} rules found" in result.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason=NO_PROMTOOL)
async def test_a_broken_expression_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "x",
                        "rules": [{"record": "x:y", "expr": "sum by (institution (rate(examsync_items_total[5m]))"}],
                    }
                ]
            }
        )
    )
    result = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "rules", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason=NO_PROMTOOL)
@pytest.mark.skipif(render_rules.helm_binary() is None, reason="helm not installed (scripts/tools/helm.sh)")
@pytest.mark.parametrize("test_file", [t.name for t in render_rules.TESTS])
async def test_alert_unit_tests_pass(tmp_path: Path, test_file: str) -> None:
    """promtool's alert tests against the rules as the chart renders them (one release, two side by
    side, every rule option)."""
    await asyncio.to_thread(render_rules.render, tmp_path)
    result = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "test", "rules", str(tmp_path / test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_promtool_tests_cover_every_alert() -> None:
    fired = set()
    for test in render_rules.TESTS:
        for case in yaml.safe_load(test.read_text())["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert fired == {name for name, _ in rule_exprs()}
    names = {t.name for t in render_rules.TESTS}
    assert {"rules_test.yaml", "rules_releases_test.yaml", "rules_options_test.yaml"} <= names


def test_every_alert_is_prefixed_and_scoped_to_the_release_job() -> None:
    """The chart replaces `job="examsync"` by the release's Service name: every expression must select
    it exactly (a regex would match other releases), and in every selector of the expression."""
    for name, expr in rule_exprs():
        assert name.startswith("Examsync"), name
        matchers = re.findall(r"\bjob\s*(=~|!=|!~|=)\s*\"([^\"]*)\"", expr)
        assert matchers and set(matchers) == {("=", "examsync")}, (name, matchers)
        selectors = re.findall(r"[a-z_:]+\{[^}]*\}|\b(?:up|examsync_[a-z_]+)\b(?!\{)", expr)
        assert selectors and all('job="examsync"' in sel for sel in selectors), (name, selectors)


def test_every_alert_has_annotations_and_a_runbook_section() -> None:
    runbook = (REPO / "docs/runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            notes = rule["annotations"]
            assert notes["summary"] and notes["description"], rule["alert"]
            url, _, anchor = notes["runbook_url"].partition("#")
            assert url.endswith("docs/runbook.md") and anchor in anchors, rule["alert"]
            if rule["alert"] != "ExamsyncOperatorDown":
                assert "$labels.institution" in notes["description"] or "$labels.system" in notes["description"]
