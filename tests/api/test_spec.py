"""The Institution spec model: defaults, durations, URLs and error messages that name the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from examsync.api.spec import SpecError, parse_duration, parse_institution, parse_spec
from tests.support.paths import REPO
from tests.support.specs import uio_spec


def minimal(**over: Any) -> dict[str, Any]:
    return uio_spec(**over)


def test_defaults() -> None:
    spec = parse_spec(minimal())
    assert spec.interval_delta == timedelta(hours=6)
    assert spec.lookback_delta == timedelta(hours=72)
    assert spec.mode == "Apply"
    assert spec.suspend is False
    assert spec.pipelines() == ["fs-inspera"]


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("1h30m", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_missing_field_is_named() -> None:
    data = minimal()
    del data["fs"]["institutionNumber"]
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert "spec.fs.institutionNumber: field required" in str(err.value)


def test_bad_duration_is_named() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(minimal(interval="6 hours"))
    assert str(err.value).startswith("spec.interval:")


def test_interval_at_least_a_minute() -> None:
    with pytest.raises(SpecError, match="interval must be at least 1m"):
        parse_spec(minimal(interval="30s"))


def test_http_only_for_loopback() -> None:
    data = minimal()
    data["fs"]["baseUrl"] = "http://fsws.usit.no"
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert "spec.fs.baseUrl" in str(err.value) and "https" in str(err.value)
    data["fs"]["baseUrl"] = "http://127.0.0.1:8080"
    assert parse_spec(data).fs is not None


def test_no_pipeline_enabled() -> None:
    with pytest.raises(SpecError, match="at least one pipeline"):
        parse_spec(minimal(inspera={"enabled": False}))


def test_fs_required_when_read() -> None:
    data = minimal()
    del data["fs"]
    with pytest.raises(SpecError, match="fs is required"):
        parse_spec(data)


def test_whole_manifest() -> None:
    inst = parse_institution(
        {
            "apiVersion": "examsync.io/v1alpha1",
            "kind": "Institution",
            "metadata": {"name": "uio", "namespace": "examsync"},
            "spec": minimal(),
        }
    )
    assert inst.key == "examsync/uio"


def test_unknown_field_rejected() -> None:
    with pytest.raises(SpecError, match=r"spec\.fs\.institutionNumbr"):
        parse_spec(minimal(fs={**minimal()["fs"], "institutionNumbr": "1"}))


FULL = {
    "shortName": "UiO",
    "fs": {
        "baseUrl": "https://fsws.usit.no",
        "institutionNumber": "185",
        "startYear": 2025,
        "credentialsSecretRef": {"name": "s-fs"},
    },
    "inspera": {
        "enabled": True,
        "baseUrl": "https://uio.inspera.no/api",
        "clientId": "uio.inspera.no",
        "credentialsSecretRef": {"name": "s-inspera"},
    },
    "wiseflow": {
        "enabled": True,
        "baseUrl": "https://europe-api.wiseflow.net/v1",
        "credentialsSecretRef": {"name": "s-wf"},
        "fsFlows": {"flowTypeId": 3, "feideUserDataTypeId": 1, "fallbackManagerUserId": 77},
        "praktikportalen": {
            "enabled": True,
            "baseUrl": "https://pp.example/api",
            "praktikportalId": "L",
            "credentialsSecretRef": {"name": "s-pp"},
            "userDataTypeId": 9,
            "externalAssessorTypeId": 2,
            "externalAssessorRoleId": 4,
        },
    },
    "notifications": {"slack": {"webhookSecretRef": {"name": "s-slack"}}},
    "audit": {"humio": {"url": "https://cloud.humio.com", "tokenSecretRef": {"name": "s-humio"}}},
}


def test_secret_references_and_urls_are_found_by_walking_the_model() -> None:
    spec = parse_spec(FULL)
    assert [(u.path, u.ref.name, u.required, u.url_key) for u in spec.secret_refs()] == [
        ("spec.fs.credentialsSecretRef", "s-fs", ("username", "password"), None),
        ("spec.inspera.credentialsSecretRef", "s-inspera", ("apiKey",), None),
        ("spec.wiseflow.credentialsSecretRef", "s-wf", ("clientId", "clientSecret"), None),
        ("spec.wiseflow.praktikportalen.credentialsSecretRef", "s-pp", ("apiKey",), None),
        ("spec.notifications.slack.webhookSecretRef", "s-slack", ("url",), "url"),
        ("spec.audit.humio.tokenSecretRef", "s-humio", ("token",), None),
    ]
    assert spec.secret_urls() == [("spec.notifications.slack.webhookSecretRef", "s-slack", "url")]
    assert [path for path, _ in spec.urls()] == [
        "spec.fs.baseUrl",
        "spec.inspera.baseUrl",
        "spec.wiseflow.baseUrl",
        "spec.wiseflow.praktikportalen.baseUrl",
        "spec.audit.humio.url",
    ]


def test_only_the_secrets_of_enabled_parts_are_needed() -> None:
    gateway = {
        **FULL["inspera"],
        "gateway": {
            "baseUrl": "https://gw.example/inspera",  # type: ignore[dict-item]
            "apiKeySecretRef": {"name": "s-gw"},
        },
    }
    off = {
        **FULL,
        "inspera": gateway,
        "wiseflow": {
            **FULL["wiseflow"],
            "praktikportalen": {
                **FULL["wiseflow"]["praktikportalen"],  # type: ignore[dict-item]
                "enabled": False,
            },
        },
    }
    spec = parse_spec(off)
    assert [u.path for u in spec.secret_refs()] == [
        "spec.fs.credentialsSecretRef",
        "spec.inspera.gateway.apiKeySecretRef",
        "spec.wiseflow.credentialsSecretRef",
        "spec.notifications.slack.webhookSecretRef",
        "spec.audit.humio.tokenSecretRef",
    ]
    # a URL is checked against the allowlist whether its part is enabled or not
    assert "spec.wiseflow.praktikportalen.baseUrl" in [path for path, _ in spec.urls()]
    assert "spec.inspera.gateway.baseUrl" in [path for path, _ in spec.urls()]


def test_no_product_module_spells_a_spec_field_path() -> None:
    """Paths of Secret references and URLs come from walking the model, never from a string."""
    import ast
    import re

    package = REPO / "operator" / "examsync"
    path_like = re.compile(r"spec\.[\w.]*(SecretRef|baseUrl|\.url)\b")
    modules = sorted(package.rglob("*.py"))
    # the modules that read Secrets and send requests are among them
    assert {package / "adapters" / "factory.py", package / "adapters" / "upstream" / "client.py"} <= set(modules)
    spelled = [
        f"{p.relative_to(package)}:{node.lineno}: {node.value}"
        for p in modules
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and path_like.search(node.value)
    ]
    assert spelled == []
