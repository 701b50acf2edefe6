"""examples/ are valid Institutions for both the API server (schema, CEL) and the CLI (pydantic);
tests/chart/invalid/ samples are rejected, each naming the field it breaks.

An invalid sample declares what must catch it in its leading comments:
`# expect-model: TEXT` (the pydantic message contains TEXT), `# expect-schema: FIELD` (a JSON-schema
error names FIELD), `# expect-cel: TEXT` (a failing CEL rule's message contains TEXT). A sample
without `expect-schema`/`expect-cel` must pass that check: only the model can catch it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examsync.api.spec import SpecError, parse_institution
from examsync.crd import open_api_schema
from tests.support.kube_schema import apply_defaults, cel_violations, load_docs, names_field, schema_errors
from tests.support.paths import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def institutions(path: Path) -> list[dict[str, Any]]:
    return [d for d in load_docs(path) if d.get("kind") == "Institution"]


def expectations(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# expect-"):
            break
        key, _, value = line[len("# expect-") :].partition(":")
        found[key.strip()] = value.strip()
    return found


def test_the_three_kinds_of_institution_are_there() -> None:
    specs = [parse_institution(doc).spec for path in EXAMPLES for doc in institutions(path)]
    assert any(s.fs and s.inspera and s.inspera.enabled and not s.inspera.gateway for s in specs), "FS+Inspera"
    assert any(s.inspera and s.inspera.gateway for s in specs), "through Gravitee"
    assert any(s.fs is None and s.inspera is None and s.pipelines() == ["praktikportalen-wiseflow"] for s in specs)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    docs = institutions(path)
    assert docs
    for doc in docs:
        assert [e.message for e in schema_errors(doc)] == []
        assert cel_violations(doc) == []
        inst = parse_institution(doc)
        assert inst.spec.pipelines()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_carries_every_secret_it_references(path: Path) -> None:
    docs = load_docs(path)
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for doc in institutions(path):
        inst = parse_institution(doc)
        for use in inst.spec.secret_refs():
            field, name = use.path, use.ref.name
            assert name in secrets, f"{path.name}: {field} names Secret {name!r}, not in the file"
            secret = secrets[name]
            assert secret["metadata"]["namespace"] == inst.metadata.namespace
            assert "data" not in secret and secret["stringData"], "placeholders go in stringData"
    for secret in secrets.values():
        for value in secret["stringData"].values():
            assert "REPLACE" in value, f"{path.name}: Secret {secret['metadata']['name']} holds no placeholder"


def test_defaults_are_what_the_model_uses() -> None:
    """The API server fills the CRD's defaults; the result must parse to the same spec."""
    spec_schema = open_api_schema()["properties"]["spec"]
    for path in EXAMPLES:
        for doc in institutions(path):
            defaulted = {**doc, "spec": apply_defaults(spec_schema, doc["spec"])}
            assert parse_institution(defaulted) == parse_institution(doc)


def test_there_are_invalid_samples_of_each_kind() -> None:
    kinds = {key for path in INVALID for key in expectations(path)}
    assert kinds == {"model", "schema", "cel"}
    assert len(INVALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_is_rejected_naming_the_field(path: Path) -> None:
    expect = expectations(path)
    assert "model" in expect, f"{path.name} has no '# expect-model:' line"
    (doc,) = institutions(path)

    with pytest.raises(SpecError) as err:
        parse_institution(doc)
    assert expect["model"] in str(err.value)

    errors = schema_errors(doc)
    if "schema" in expect:
        assert any(names_field(e, expect["schema"]) for e in errors), [e.message for e in errors]
    else:
        assert errors == [], "the schema catches this too: add an expect-schema line"

    if "spec" not in doc:
        return
    violations = cel_violations(doc) if not errors else []  # the API server stops at schema errors
    if "cel" in expect:
        assert any(expect["cel"] in v for v in violations), violations
    else:
        assert violations == []
