"""The generated CRD: committed copies up to date, structural, CEL rules and printer columns; the
chart renders the same CRD from its template, behind crds.install, kept on uninstall."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from examsync.api.spec import CRD_URL_PATTERN
from examsync.crd import render_chart_template, render_crd, render_crd_yaml, structural_problems
from tests.support.paths import REPO

CRD_FILE = REPO / "crds/institutions.examsync.io.yaml"
CHART = REPO / "charts/examsync"
CHART_TEMPLATE = CHART / "templates/crds/institutions.examsync.io.yaml"
HELM = shutil.which("helm") or str(REPO / ".tools/bin/helm")
needs_helm = pytest.mark.skipif(not shutil.which(HELM), reason="helm not installed (scripts/tools/helm.sh)")


def helm_crds(*sets: str) -> list[dict[str, Any]]:
    args = [HELM, "template", "examsync", str(CHART), "--namespace", "ops"]
    for value in sets:
        args += ["--set", value]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "CustomResourceDefinition"]


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        nodes.append((path, node))
        for name, sub in node.get("properties", {}).items():
            nodes += walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            nodes += walk(node["items"], f"{path}[]")
    return nodes


@pytest.fixture(scope="module")
def version() -> dict[str, Any]:
    (ver,) = render_crd()["spec"]["versions"]
    return dict(ver)


def test_committed_crd_is_current() -> None:
    assert CRD_FILE.read_text(encoding="utf-8") == render_crd_yaml(), "crds/ is stale: run `make crd`"


def test_chart_template_is_current() -> None:
    assert CHART_TEMPLATE.read_text(encoding="utf-8") == render_chart_template(), "chart template stale: `make crd`"


def test_the_chart_has_no_crds_folder() -> None:
    # helm installs a chart's crds/ once and never upgrades it; the template replaces it
    assert not (CHART / "crds").exists()


@needs_helm
def test_chart_renders_the_crd_of_crds_folder_kept_on_uninstall() -> None:
    committed = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    (crd,) = helm_crds()
    assert crd["metadata"]["name"] == committed["metadata"]["name"]
    assert crd["spec"] == committed["spec"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


@needs_helm
def test_crds_install_false_renders_no_crd() -> None:
    assert helm_crds("crds.install=false") == []
    assert helm_crds("crds.install=false", "replicas=2") == []


@needs_helm
def test_a_stale_chart_template_is_caught(tmp_path: Any) -> None:
    """A spec change that `make crd` did not carry into the chart shows in the rendered comparison."""
    chart = tmp_path / "examsync"
    shutil.copytree(CHART, chart)
    template = chart / "templates/crds/institutions.examsync.io.yaml"
    original = template.read_text(encoding="utf-8")
    assert "maxLength: 2048" in original
    template.write_text(original.replace("maxLength: 2048", "maxLength: 4096"), encoding="utf-8")
    result = subprocess.run(
        [HELM, "template", "examsync", str(chart)], capture_output=True, text=True, timeout=60, check=True
    )
    (crd,) = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "CustomResourceDefinition"]
    assert crd["spec"] != yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))["spec"]
    assert template.read_text(encoding="utf-8") != render_chart_template()


def test_helm_template_braces_in_the_spec_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    import examsync.crd as crd_module

    real = crd_module.render_crd

    def with_braces() -> dict[str, Any]:
        crd = real()
        crd["spec"]["names"]["categories"] = ["{{ .Release.Name }}"]
        return crd

    monkeypatch.setattr(crd_module, "render_crd", with_braces)
    text = crd_module.render_chart_template()
    assert '{{ "{{" }} .Release.Name }}' in text and "- {{ .Release.Name }}" not in text


def test_yaml_round_trips() -> None:
    assert yaml.safe_load(render_crd_yaml()) == render_crd()


def test_names_and_scope() -> None:
    crd = render_crd()
    assert crd["metadata"]["name"] == "institutions.examsync.io"
    spec = crd["spec"]
    assert spec["group"] == "examsync.io" and spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Institution",
        "listKind": "InstitutionList",
        "plural": "institutions",
        "singular": "institution",
        "shortNames": ["inst"],
        "categories": ["examsync"],
    }


def test_served_storage_and_status_subresource(version: dict[str, Any]) -> None:
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural(version: dict[str, Any]) -> None:
    schema = version["schema"]["openAPIV3Schema"]
    assert structural_problems(schema) == []
    for path, node in walk(schema):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title"} & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("default", "absent") is not None, path


def test_optional_fields_are_plain_optional_properties(version: dict[str, Any]) -> None:
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["shortName"]
    assert spec["properties"]["fs"]["type"] == "object"
    assert "nullable" not in spec["properties"]["fs"]
    inspera = spec["properties"]["inspera"]["properties"]
    assert inspera["baseUrl"] == {
        "type": "string",
        "description": inspera["baseUrl"]["description"],
        "pattern": CRD_URL_PATTERN,
        "maxLength": 2048,
    }
    assert inspera["gateway"]["required"] == ["baseUrl", "apiKeySecretRef"]


def test_constraints_survive(version: dict[str, Any]) -> None:
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["mode"]["enum"] == ["Apply", "DryRun"] and spec["mode"]["default"] == "Apply"
    assert spec["interval"]["default"] == "6h" and spec["interval"]["pattern"].startswith("^(")
    fs = spec["fs"]["properties"]
    assert (fs["startYear"]["minimum"], fs["startYear"]["maximum"]) == (2000, 2100)
    assert fs["institutionNumber"]["pattern"] == "^[0-9]+$"
    assert fs["credentialsSecretRef"]["properties"]["name"]["maxLength"] == 253
    assert spec["shortName"]["description"]


def test_cel_rules(version: dict[str, Any]) -> None:
    rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    messages = " | ".join(r["message"] for r in rules)
    assert "at least one pipeline must be enabled" in messages
    assert "fs is required" in messages
    interval = next(r for r in rules if "interval" in r["message"])
    assert interval["rule"] == "!has(self.interval) || duration(self.interval) >= duration('1m')"
    assert interval["fieldPath"] == ".interval"


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {c["name"].upper(): c for c in version["additionalPrinterColumns"]}
    assert columns["READY"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["STATUS"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].message'
    assert columns["SUSPENDED"] == {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend"}
    assert columns["LAST RUN"] == {"name": "Last Run", "type": "date", "jsonPath": ".status.lastRunTime"}
    assert columns["AGE"]["jsonPath"] == ".metadata.creationTimestamp" and columns["AGE"]["type"] == "date"
    default_view = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert default_view == ["READY", "STATUS", "SUSPENDED", "LAST RUN", "AGE"]


def test_status_keeps_unknown_fields_and_types_conditions(version: dict[str, Any]) -> None:
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert {"type", "status"} <= set(conditions["items"]["required"])


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
            "properties and additionalProperties together",
        ),
        ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}, "'anyOf'"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}, "'$ref'"),
        ({"type": "object", "properties": {"a": {"description": "no type"}}}, ".a: type is missing"),
        ({"type": "object", "properties": {"a": {"type": "string", "default": None}}}, "default None"),
        ({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}}, "default 'x'"),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, "single items schema"),
        ({"type": "object", "properties": {"a": {"type": "object"}}}, "pruned empty"),
        ({"type": "object", "required": ["b"], "properties": {"a": {"type": "string"}}}, "required 'b'"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "true", "fieldPath": ".b"}],
            },
            "fieldPath '.b'",
        ),
    ],
)
def test_structural_checker_catches(node: dict[str, Any], problem: str) -> None:
    problems = structural_problems(node)
    assert any(problem in p for p in problems), problems


def schema_nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node under ``node``: properties, array items and map values."""
    nodes = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        nodes += schema_nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        nodes += schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        nodes += schema_nodes(node["additionalProperties"], f"{path}{{*}}")
    return nodes


def test_every_status_field_is_described(version: dict[str, Any]) -> None:
    """`kubectl explain institution.status...` says what each field holds, however deep."""
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    nodes = schema_nodes(status, ".status")
    assert len(nodes) > 60  # the conditions, counters, failures, history, plan and progress are all there
    assert [path for path, node in nodes if not node.get("description")] == []


def test_the_status_schema_comes_from_the_model(version: dict[str, Any]) -> None:
    from examsync.api.status import InstitutionStatus
    from examsync.domain.outcomes import FsCounts, PraktikportalenCounts

    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert set(status["properties"]) == {f.alias or n for n, f in InstitutionStatus.model_fields.items()}
    pipelines = status["properties"]["pipelines"]["properties"]
    assert list(pipelines["fs-inspera"]["properties"]) == list(FsCounts.model_fields)
    assert list(pipelines["fs-wiseflow"]["properties"]) == list(FsCounts.model_fields)
    assert list(pipelines["praktikportalen-wiseflow"]["properties"]) == list(PraktikportalenCounts.model_fields)
    # the status keeps what it does not know (a later version's fields, kopf's own); no defaults
    assert all(pipelines[name]["x-kubernetes-preserve-unknown-fields"] for name in pipelines)
    assert not [path for path, node in schema_nodes(status, ".status") if "default" in node]
    # a reason is a plain string there: a later version's reason must not be refused by this CRD
    reason = status["properties"]["conditions"]["items"]["properties"]["reason"]
    assert reason["type"] == "string" and "enum" not in reason and "InvalidSpec" in reason["description"]
