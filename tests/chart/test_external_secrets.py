"""examples/external-secrets/: each example of examples/ also with its Secrets fed by the External
Secrets Operator. The ExternalSecrets are valid for ESO's published CRD (external-secrets.io/v1, with
unknown fields refused), and the Secrets they produce have exactly the names and keys the Institution
references, in its namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from examsync.api.spec import parse_institution
from tests.support.kube_schema import cel_violations, load_docs, schema_errors
from tests.support.paths import REPO

PLAIN = sorted((REPO / "examples").glob("*.yaml"))
ESO = sorted((REPO / "examples/external-secrets").glob("*.yaml"))
SCHEMA = json.loads((Path(__file__).parent / "schemas/externalsecret-v1.schema.json").read_text(encoding="utf-8"))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def es_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def produced_secrets(docs: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(namespace, name) -> keys of the Secret each ExternalSecret creates (ESO's rules: the target name
    defaults to the ExternalSecret's name; a template's data replaces the fetched keys)."""
    out: dict[tuple[str, str], set[str]] = {}
    for es in of_kind(docs, "ExternalSecret"):
        spec = es["spec"]
        assert "dataFrom" not in spec, "dataFrom yields keys only the store knows: list them in data"
        target = spec.get("target", {})
        name = target.get("name", es["metadata"]["name"])
        template = target.get("template", {})
        keys = set(template["data"]) if "data" in template else {d["secretKey"] for d in spec.get("data", [])}
        key = (es["metadata"]["namespace"], name)
        assert key not in out, f"two ExternalSecrets write Secret {name}"
        out[key] = keys
    return out


def referenced_secrets(docs: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for doc in of_kind(docs, "Institution"):
        inst = parse_institution(doc)
        for use in inst.spec.secret_refs():
            out.setdefault((inst.metadata.namespace, use.ref.name), set()).update(use.required)
    return out


def test_every_example_has_an_external_secrets_variant() -> None:
    assert [p.name for p in ESO] == [p.name for p in PLAIN]
    assert len(ESO) >= 3


@pytest.mark.parametrize("path", ESO, ids=lambda p: p.name)
def test_the_variant_holds_the_same_institution(path: Path) -> None:
    docs = load_docs(path)
    plain = load_docs(REPO / "examples" / path.name)
    assert of_kind(docs, "Institution") == of_kind(plain, "Institution")
    assert of_kind(docs, "Secret") == [], "the Secrets come from ESO, not from the file"
    for doc in of_kind(docs, "Institution"):
        assert [e.message for e in schema_errors(doc)] == [] and cel_violations(doc) == []


@pytest.mark.parametrize("path", ESO, ids=lambda p: p.name)
def test_external_secrets_are_valid_for_esos_crd(path: Path) -> None:
    docs = load_docs(path)
    assert {d["kind"] for d in docs} == {"Institution", "ExternalSecret"}
    for doc in of_kind(docs, "ExternalSecret"):
        assert es_errors(doc) == [], doc["metadata"]["name"]


@pytest.mark.parametrize("path", ESO, ids=lambda p: p.name)
def test_the_produced_secrets_are_exactly_those_referenced(path: Path) -> None:
    docs = load_docs(path)
    produced = produced_secrets(docs)
    assert produced == referenced_secrets(docs)
    # and the same Secrets, with the same keys, as the hand-written variant
    plain = of_kind(load_docs(REPO / "examples" / path.name), "Secret")
    assert produced == {(s["metadata"]["namespace"], s["metadata"]["name"]): set(s["stringData"]) for s in plain}


def test_the_checks_catch_mistakes() -> None:
    all_docs = load_docs(ESO[0])
    es = of_kind(all_docs, "ExternalSecret")[0]
    others = [d for d in all_docs if d is not es]
    misspelt = json.loads(json.dumps(es))
    misspelt["spec"]["data"][0]["secretkey"] = misspelt["spec"]["data"][0].pop("secretKey")
    assert any("secretkey" in e or "secretKey" in e for e in es_errors(misspelt))
    old_api = {**es, "apiVersion": "external-secrets.io/v1beta1"}
    assert es_errors(old_api)
    wrong_store = json.loads(json.dumps(es))
    wrong_store["spec"]["secretStoreRef"]["kind"] = "VaultStore"
    assert es_errors(wrong_store)
    renamed = json.loads(json.dumps(es))
    renamed["spec"]["data"][0]["secretKey"] = "user"
    docs = [*others, renamed]
    assert produced_secrets(docs) != referenced_secrets(docs)
    assert produced_secrets(all_docs) == referenced_secrets(all_docs)
    retargeted = json.loads(json.dumps(es))
    retargeted["spec"]["target"]["name"] = "uio-fs-credentials"
    docs = [*others, retargeted]
    assert produced_secrets(docs) != referenced_secrets(docs)
