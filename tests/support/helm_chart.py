"""The chart rendered by the real helm, for the tests that read what it renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO

CHART = REPO / "charts/examsync"
ALL_OPTIONS = CHART / "ci/all-options-values.yaml"
HELM = shutil.which("helm") or str(REPO / ".tools/bin/helm")

needs_helm = pytest.mark.skipif(not shutil.which(HELM), reason="helm not installed (scripts/tools/helm.sh)")


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HELM, "template", "examsync", str(CHART), "--namespace", "ops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render(*sets: str, values: Path | None = None) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    if values is not None:
        args += ["-f", str(values)]
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc
