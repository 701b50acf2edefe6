"""What the API server does with an Institution, offline: defaulting, JSON-schema validation with
unknown fields rejected (kubectl's strict field validation), and the CRD's CEL rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

from examsync.crd import open_api_schema, validation_schema


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting: fill absent properties of objects that are present."""
    value = copy.deepcopy(value)
    if schema.get("type") == "object" and isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif schema.get("type") == "array" and isinstance(value, list) and "items" in schema:
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def schema_errors(doc: dict[str, Any]) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft4Validator(validation_schema())
    return list(validator.iter_errors(doc))


def names_field(err: jsonschema.ValidationError, field: str) -> bool:
    """The error is at `field`, or at its parent and quotes its last name (required, unknown)."""
    path = ".".join(str(p) for p in err.absolute_path)
    parent, _, last = field.rpartition(".")
    return path == field or (path == parent and f"'{last}'" in err.message)


def cel_violations(doc: dict[str, Any]) -> list[str]:
    """Messages of the spec's x-kubernetes-validations that do not hold (after defaulting)."""
    spec_schema = open_api_schema()["properties"]["spec"]
    spec = apply_defaults(spec_schema, doc.get("spec", {}))
    env = celpy.Environment()
    activation = {"self": celpy.json_to_cel(spec)}
    failed = []
    for rule in spec_schema["x-kubernetes-validations"]:
        result = env.program(env.compile(rule["rule"])).evaluate(activation)
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            failed.append(rule["message"])
    return failed
