"""The typed WISEflow models (adapters/wiseflow/models.py) agree with WISEflow's OpenAPI description:
every field name, type, enum, pattern, length and nullability, and what each side requires.

Compared with the extract itself (no readings, no strictness), field by field, through nested
objects and arrays. A new field, a renamed one, a new enum value or a changed pattern in a later
spec version fails here, naming the schema and the field.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any

import pytest
from pydantic import BaseModel

from examsync.adapters.wiseflow import models as m
from examsync_sandbox.simulators import wiseflow_models as served
from tests.contract.extract_wiseflow_spec import OPERATIONS
from tests.support.wiseflow_openapi import load_extract

SPEC = load_extract()
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
# examsync's models and the simulator's (what only it handles), by name
MODEL_CLASSES = {
    name: cls
    for module in (m, served)
    for name, cls in vars(module).items()
    if inspect.isclass(cls) and issubclass(cls, BaseModel | Enum)
}

# Each model and the spec schema it stands for; nested objects are paired as they are reached.
PAIRS: list[tuple[type[BaseModel], str]] = [
    (m.TokenForm, "oauth2TokenBody"),
    (m.TokenAnswer, "oauth2TokenResponse"),
    (m.TokenRefusal, "oauth2TokenError"),
    (m.FlowSearch, "flows-search-request"),
    (m.Page[list[m.FlowItem]], "flows-search-api-response"),
    (m.CreateFlow, "create-flow-request"),
    (m.CreatedFlow, "create-flow-response"),
    (served.BasicFlow, "basic-flow"),
    (m.NewExternalSource, "flow-external-sources-request"),
    (m.Envelope[m.ExternalSourceAnswer], "flow-external-source-api-response"),
    (m.Envelope[list[m.ExternalSourceAnswer]], "flow-external-sources-api-response"),
    (m.NoData, "success-api-response-no-data"),
    (m.NoData, "return-no-data-api-response"),
    (served.ErrorEnvelope, "general-api-error-response"),
    (served.ErrorEnvelope, "error-api-response-no-data"),
    (m.DatesPatch, "dates-patch-request"),
    (m.Envelope[served.FlowDates], "dates-get-response"),
    (m.Envelope[m.MetadataAnswer], "metadata-api-response"),
    (m.MetadataPut, "metadata-put-request"),
    (m.UserAnswer, "user"),
    (served.UserSearch, "users-search-request"),
    (m.Page[list[served.UserHit]], "users-search-response"),
    (m.UserWrite, "create-user-request"),
    (m.WrittenUser, "create-user-response"),
    (m.Page[list[m.AssessorAnswer]], "assessors-get-response"),
    (m.AddAssessor, "assessor-add-request"),
    (m.Envelope[m.AssessorAnswer], "assessor-post-response"),
    (served.AccessTokenRequest, "access-token-request"),
    (served.AccessTokenAnswer, "access-token-response"),
]

# Answer fields the rules cannot do without although the spec marks them optional (a body without
# one is a shape error for that item); every other answer field is read as optional.
NEEDED: dict[str, set[str]] = {
    "oauth2TokenResponse": {"access_token"},
    "flows-search-api-response": {"success", "data"},
    "flows-search-response": {"flowId", "state"},
    "pagination-response": {"limit", "offset", "total"},
    "create-flow-response": {"flowId"},
    "flow-external-source-api-response": {"success", "data"},
    "flow-external-sources-api-response": {"success", "data"},
    "flow-external-source-response": {"id", "reference"},
    "success-api-response-no-data": {"success"},
    "return-no-data-api-response": {"success"},
    "general-api-error-response": {"success", "error"},
    "error-api-response-no-data": {"success", "error"},
    "dates-get-response": {"success", "data"},
    "metadata-api-response": {"success", "data"},
    "metadata-response": {"title", "examinationType", "purpose"},
    "users-search-response": {"success", "data"},
    "users-search-result": {"id"},
    "create-user-response": {"userId"},
    "assessors-get-response": {"success", "data"},
    "assessors-get-response.pagination": {"limit", "offset", "total"},
    "assessor-post-response": {"success", "data"},
    "assessor-response": {"assessorId", "user"},
    "simple-user-response": {"userId"},
    "access-token-response": {"token"},
}
# Request fields examsync requires although the spec's schema does not (reading: a source without
# a reference cannot be reported on; the spec says `nullable: false`).
REQUIRED_BEYOND_SPEC: dict[str, set[str]] = {"flow-external-sources-request": {"reference"}}
# Integer fields the spec describes as a bitmask: compared with their enum of bits below.
BITMASKS: dict[str, type[IntEnum]] = {"basic-flow.type": served.FlowTypeBit}


@dataclass
class Walk:
    problems: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)


def _spec_node(node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The schema a node names, merged if it is an allOf, and its component name."""
    name = None
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = SCHEMAS[name]
    if "allOf" in node:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in node["allOf"]:
            resolved, _ = _spec_node(part)
            merged["properties"].update(resolved.get("properties", {}))
            merged["required"] += resolved.get("required", [])
        node = merged
    return node, name


def _model_node(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool, str | None]:
    """The schema a model node names, whether it admits null, and its class name."""
    nullable = False
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        assert len(options) == 1, f"a union the spec cannot express: {node}"
        node = options[0]
    name = None
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = defs[name]
    return node, nullable, name


def _described_values(description: str) -> list[str] | None:
    """Enum values a string field's description lists ("one of the following values: A, B, C")."""
    found = re.search(r"following values:\s*([A-Z_, ]+)", description)
    return [v.strip() for v in found.group(1).split(",") if v.strip()] if found else None


def _described_codes(description: str) -> dict[str, int] | None:
    """Integer codes a field's description lists, one `NAME = N` a line."""
    lines = [line.strip() for line in description.strip().splitlines() if line.strip()]
    pairs = [re.fullmatch(r"(\w+)\s*=\s*(\d+)", line) for line in lines]
    if not lines or not all(pairs):
        return None
    return {p.group(1): int(p.group(2)) for p in pairs if p}


def _compare(
    walk: Walk,
    model: dict[str, Any],
    spec: dict[str, Any],
    where: str,
    defs: dict[str, Any],
    cls: type[BaseModel] | None,
    request: bool,
) -> None:
    spec_type = spec.get("type")
    if model.get("type") == "null" or (not model and spec_type is None):
        return  # data: null (see READINGS), or an untyped value on both sides
    if spec_type == "object" or "properties" in spec:
        _compare_object(walk, model, spec, where, defs, cls, request)
        return
    if spec_type == "array":
        if model.get("type") != "array":
            walk.problems.append(f"{where}: the spec has an array, the model {model.get('type')}")
            return
        item, _, name = _model_node(model["items"], defs)
        spec_item, spec_name = _spec_node(spec["items"])
        if spec_name:
            walk.visited.add(spec_name)
        _compare(walk, item, spec_item, spec_name or f"{where}[]", defs, _class(name), request)
        return
    if model.get("type") != spec_type:
        walk.problems.append(f"{where}: the spec has {spec_type}, the model {model.get('type')}")
        return
    if spec_type == "string" and spec.get("format") == "date-time" and model.get("format") != "date-time":
        walk.problems.append(f"{where}: the spec has a date-time, the model a plain string")
    for keyword in ("pattern", "maxLength"):
        if spec.get(keyword) != model.get(keyword):
            walk.problems.append(
                f"{where}: {keyword} {spec.get(keyword)!r} in the spec, {model.get(keyword)!r} in the model"
            )
    _compare_enum(walk, model, spec, where, defs)


def _class(name: str | None) -> type[BaseModel] | None:
    cls = MODEL_CLASSES.get(name or "")
    return cls if inspect.isclass(cls) and issubclass(cls, BaseModel) else None


def _compare_enum(walk: Walk, model: dict[str, Any], spec: dict[str, Any], where: str, defs: dict[str, Any]) -> None:
    description = spec.get("description", "")
    if "enum" in spec:
        expected: list[Any] | None = spec["enum"]
    elif spec.get("type") == "string":
        expected = _described_values(description)
    else:
        expected = None
    if expected is not None:
        if sorted(model.get("enum", [])) != sorted(expected):
            walk.problems.append(f"{where}: values {sorted(expected)} in the spec, {model.get('enum')} in the model")
        return
    codes = _described_codes(description) if spec.get("type") == "integer" else None
    if codes is None:
        return
    if where in BITMASKS:
        cls: Any = BITMASKS[where]
    else:
        cls = MODEL_CLASSES.get(model.get("title", ""))
        if cls is None or not issubclass(cls, IntEnum):
            walk.problems.append(f"{where}: the spec lists codes {codes}, the model has no enum of them")
            return
    if {e.name: e.value for e in cls} != codes:
        walk.problems.append(f"{where}: codes {codes} in the spec, {dict((e.name, e.value) for e in cls)} in the model")


def _compare_object(
    walk: Walk,
    model: dict[str, Any],
    spec: dict[str, Any],
    where: str,
    defs: dict[str, Any],
    cls: type[BaseModel] | None,
    request: bool,
) -> None:
    spec_props: dict[str, Any] = spec.get("properties", {})
    model_props: dict[str, Any] = model.get("properties", {})
    if not spec_props:
        return  # an object the spec leaves open
    if set(spec_props) != set(model_props):
        walk.problems.append(
            f"{where}: fields only in the spec {sorted(set(spec_props) - set(model_props))}, "
            f"only in the model {sorted(set(model_props) - set(spec_props))}"
        )
    spec_required = set(spec.get("required", []))
    model_required = set(model.get("required", []))
    schema_key = where
    if request:
        allowed = spec_required | REQUIRED_BEYOND_SPEC.get(where, set())
        if model_required != allowed:
            walk.problems.append(
                f"{where}: required {sorted(spec_required)} in the spec, {sorted(model_required)} in the model"
            )
    else:
        extra = model_required - spec_required - NEEDED.get(schema_key, set())
        if extra:
            walk.problems.append(f"{where}: the model requires {sorted(extra)}, which the spec leaves optional")
        missing = spec_required - model_required
        if missing:
            walk.problems.append(f"{where}: the spec requires {sorted(missing)}, the model reads them as optional")
    for name in sorted(set(spec_props) & set(model_props)):
        spec_prop, spec_name = _spec_node(spec_props[name])
        if spec_name:
            walk.visited.add(spec_name)
        model_prop, model_nullable, model_name = _model_node(model_props[name], defs)
        spec_nullable = bool(spec_props[name].get("nullable") or spec_prop.get("nullable"))
        inner = f"{spec_name}" if spec_name else f"{where}.{name}"
        if request and cls is not None and issubclass(cls, m.Request):
            if (name in cls.nullable) != spec_nullable:
                walk.problems.append(
                    f"{where}.{name}: nullable {spec_nullable} in the spec, {name in cls.nullable} in the model"
                )
        elif spec_nullable and not model_nullable and model_prop.get("type") != "null":
            walk.problems.append(f"{where}.{name}: the spec lets it be null, the model does not")
        _compare(walk, model_prop, spec_prop, inner, defs, _class(model_name), request)


def _walk(model: type[BaseModel], name: str) -> Walk:
    walk = Walk(visited={name})
    schema = model.model_json_schema(by_alias=True)
    spec, _ = _spec_node({"$ref": f"#/components/schemas/{name}"})
    _compare(walk, schema, spec, name, schema.get("$defs", {}), model, issubclass(model, m.Request))
    return walk


@pytest.mark.parametrize(("model", "name"), PAIRS, ids=[name for _, name in PAIRS])
def test_model_agrees_with_the_spec(model: type[BaseModel], name: str) -> None:
    assert _walk(model, name).problems == []


def test_every_schema_the_operations_use_has_a_model() -> None:
    visited: set[str] = set()
    for model, name in PAIRS:
        visited |= _walk(model, name).visited
    parts = {p["$ref"].rsplit("/", 1)[-1] for n in visited for p in SCHEMAS[n].get("allOf", []) if "$ref" in p}
    assert set(SCHEMAS) - visited - parts == set()


def test_the_search_and_the_flow_name_the_same_states() -> None:
    """The search's state names and the flow's integer codes are one list in the same order."""
    search_states = SCHEMAS["flows-search-response"]["properties"]["state"]["enum"]
    codes = _described_codes(SCHEMAS["basic-flow"]["properties"]["state"]["description"])
    assert codes is not None and list(codes.values()) == list(range(len(search_states)))
    assert [served.STATE_CODES[m.FlowState(s)] for s in search_states] == list(served.FlowStateCode)


def test_the_extract_is_the_spec_version_examsync_follows() -> None:
    assert SPEC["info"]["version"] == "1.34.0"
    assert SPEC["info"]["x-extract"]["operations"] == [f"{meth.upper()} {path}" for path, meth in OPERATIONS]
    assert {(path, meth) for path, item in SPEC["paths"].items() for meth in item if meth != "parameters"} == set(
        OPERATIONS
    )
