"""The Grafana dashboard: a stable uid, the variables datasource, job and institution, and every panel
querying through them (so one dashboard serves several releases and a chosen set of Institutions)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from examsync import metrics
from tests.support.paths import REPO

DASHBOARDS = sorted((REPO / "charts/examsync/files/dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = re.compile(r"\b((?:examsync_|up\b)[a-z_]*)\s*(\{[^}]*\})?")


def family_labels() -> dict[str, tuple[str, ...]]:
    """Label names of every metric family the operator exports, by family name."""
    found: dict[str, tuple[str, ...]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            found[value._name] = tuple(value._labelnames)
    for family in metrics.CONDITIONS.describe():
        found[family.name] = ("institution", "type", "status")
    return found


def labels_of(series: str) -> tuple[str, ...]:
    families = family_labels()
    for name in sorted(families, key=len, reverse=True):
        if series == name or series.startswith(name + "_"):
            return families[name]
    raise AssertionError(f"{series} is not exported by the operator")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(request.param.read_text())
    return loaded


def test_the_dashboard_has_a_stable_uid() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert uids == ["examsync-overview"]


def test_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "institution"]
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "institution"):
        var = variables[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["multi"] and var["includeAll"]
    assert "examsync_" in variables["job"]["definition"] and variables["job"]["definition"].endswith(", job)")
    # the institutions offered are those of the chosen operators
    assert 'job=~"$job"' in variables["institution"]["definition"]


def test_every_panel_uses_the_variables(dashboard: dict[str, Any]) -> None:
    checked = 0
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            selectors = SELECTOR.findall(target["expr"])
            assert selectors, (panel["title"], target["expr"])
            for name, matchers in selectors:
                assert 'job=~"$job"' in matchers, (panel["title"], name)
                if "institution" in labels_of(name):
                    assert 'institution=~"$institution"' in matchers, (panel["title"], name)
                checked += 1
    assert checked >= 15


def test_the_check_catches_a_panel_without_the_job() -> None:
    assert SELECTOR.findall("sum(rate(examsync_retries_total[5m]))") == [("examsync_retries_total", "")]
    assert "institution" in labels_of("examsync_items_total")
    assert "institution" in labels_of("examsync_institution_condition")
    assert "institution" not in labels_of("examsync_upstream_request_duration_seconds_bucket")
