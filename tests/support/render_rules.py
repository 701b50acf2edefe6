"""The chart's alert rules as concrete Prometheus rule files, rendered by helm, for promtool.

The rules have one source (charts/examsync/files/rules/examsync.rules.yaml); what Prometheus loads
is the chart's PrometheusRule, adapted to its release (job, additionalLabels, disabled alerts,
runbookBaseUrl). So the promtool tests (tests/chart/rules/rules_*test.yaml) run against rendered
files: `python -m tests.support.render_rules DIR` (from the repository's root) writes DIR/<release>.rules.yaml for each
release below and copies the test files next to them (promtool reads rule_files relative to the
test file). Used by scripts/checks/rules.sh and tests/chart/test_promql.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

CHART = REPO / "charts/examsync"
TESTS = sorted((REPO / "tests/chart/rules").glob("rules_*test.yaml"))

# release name -> extra `helm template` arguments (kept as flag/value pairs)
# fmt: off
RELEASES: dict[str, list[str]] = {
    # the default install (`helm install examsync`): job "examsync"
    "examsync": [],
    # a second release side by side (sharding): job "examsync-dk"
    "examsync-dk": [],
    # every rule option: another job name, labels for the team's routing, an alert left out, a runbook elsewhere
    "exams": [
        "--set", "fullnameOverride=exams-operator",
        "--set", "prometheusRule.additionalLabels.team=exams",
        "--set", "prometheusRule.additionalLabels.tier=platform",
        "--set", "prometheusRule.disabled.ExamsyncSuspendedTooLong=true",
        "--set", "prometheusRule.runbookBaseUrl=https://wiki.example.org/examsync/runbook",
    ],
}
# fmt: on


def helm_binary() -> str | None:
    found = shutil.which("helm")
    local = REPO / ".tools/bin/helm"
    return found or (str(local) if local.exists() else None)


def rendered_spec(release: str, *args: str, helm: str | None = None) -> dict[str, Any]:
    """The `spec` (groups) of the PrometheusRule the chart renders for this release."""
    helm = helm or helm_binary()
    if helm is None:
        raise RuntimeError("helm not installed (scripts/tools/helm.sh)")
    result = subprocess.run(
        [
            helm,
            "template",
            release,
            str(CHART),
            "--namespace",
            "monitoring",
            "--set",
            "prometheusRule.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    spec: dict[str, Any] = yaml.safe_load(result.stdout)["spec"]
    return spec


def render(dest: Path) -> list[Path]:
    """Write the rule file of every release and the test files into dest; returns the test files."""
    dest.mkdir(parents=True, exist_ok=True)
    for release, args in RELEASES.items():
        spec = rendered_spec(release, *args)
        (dest / f"{release}.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    copies = []
    for test in TESTS:
        shutil.copyfile(test, dest / test.name)
        copies.append(dest / test.name)
    return copies


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.support.render_rules DIR")
    for path in render(Path(sys.argv[1])):
        print(path)
