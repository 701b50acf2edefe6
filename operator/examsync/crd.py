"""The Institution CustomResourceDefinition, generated from the spec and status models.

pydantic writes JSON Schema 2020-12 (``$defs``/``$ref``, ``anyOf`` with ``null`` for optional fields,
``additionalProperties: false``); the API server wants a *structural* OpenAPI v3 schema. This module
inlines and simplifies the one into the other, and checks the structural rules itself because
``kubernetes-validate`` does not (it accepts ``properties`` next to ``additionalProperties``).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from examsync.api.conditions import ConditionType
from examsync.api.spec import (
    API_GROUP,
    API_VERSION,
    CATEGORIES,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    InstitutionSpec,
)
from examsync.api.status import InstitutionStatus

CRD_NAME = f"{PLURAL}.{API_GROUP}"
HEADER = "# Generated from examsync.api by `examsync crd` (make crd). Do not edit by hand.\n"

# Rules the pydantic model checks in Python but cannot express in JSON Schema.
_EXTRA_SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.interval) || duration(self.interval) >= duration('1m')",
        "message": "interval must be at least 1m",
        "fieldPath": ".interval",
    },
    {
        "rule": "!has(self.inspera) || !self.inspera.enabled || has(self.inspera.gateway)"
        " || (has(self.inspera.baseUrl) && has(self.inspera.clientId) && has(self.inspera.credentialsSecretRef))",
        "message": "inspera: baseUrl, clientId and credentialsSecretRef are required for the direct route"
        " (or set gateway)",
        "fieldPath": ".inspera",
    },
]

# Keywords a structural schema may use (apiextensions.k8s.io/v1 JSONSchemaProps, minus the
# non-structural ones we never emit: $ref, allOf/anyOf/oneOf/not, patternProperties, ...). Both lists are
# grouped by what the keywords constrain, so they are kept out of the formatter.
# fmt: off
ALLOWED_KEYS = frozenset({
    "type", "format", "description", "default", "enum", "pattern", "example",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minItems", "maxItems", "minProperties", "maxProperties",
    "required", "properties", "items", "additionalProperties",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-validations",
})
_KEY_ORDER = [
    "type", "description", "default", "enum", "pattern", "format", "example",
    "minLength", "maxLength", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
    "minItems", "maxItems", "minProperties", "maxProperties",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields", "required", "properties", "items", "additionalProperties",
    "x-kubernetes-validations",
]
# fmt: on
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "object": (dict,),
    "array": (list,),
}


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return {k: node[k] for k in sorted(node, key=lambda k: (rank.get(k, len(rank)), k))}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref`` and collapse ``anyOf: [X, null]`` into X; the outer keys win (description)."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = _resolve(defs[ref.rsplit("/", 1)[-1]], defs)
        node = {**target, **node}
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        members = [m for m in any_of if m != {"type": "null"}]
        if len(members) != 1:
            raise ValueError(f"cannot make a structural schema from anyOf with {len(members)} non-null members")
        node = {**_resolve(members[0], defs), **node}
    return node


def _structural(node: dict[str, Any], defs: dict[str, Any], *, defaults: bool = True) -> dict[str, Any]:
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and (value is None or not defaults)):
            continue
        if key == "additionalProperties" and value is True:
            out["x-kubernetes-preserve-unknown-fields"] = True  # a model that keeps unknown fields
            continue
        if key == "additionalProperties" and (value is False or "properties" in node):
            continue  # unknown fields are pruned by the API server (and warned about by kubectl)
        if key == "properties":
            out[key] = {name: _structural(sub, defs, defaults=defaults) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs, defaults=defaults)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020-12 number form -> OpenAPI v3.0 boolean form.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = copy.deepcopy(value)
    return _ordered(out)


def spec_schema() -> dict[str, Any]:
    """The structural schema of ``spec``, with its CEL rules."""
    raw = InstitutionSpec.model_json_schema()
    defs = raw.pop("$defs", {})
    schema = _structural(raw, defs)
    schema["x-kubernetes-validations"] = [*schema.get("x-kubernetes-validations", []), *_EXTRA_SPEC_RULES]
    return _ordered(schema)


def status_schema() -> dict[str, Any]:
    """The structural schema of ``status``, every field described. Without defaults: the API
    server must not make up status the operator did not write."""
    raw = InstitutionStatus.model_json_schema()
    defs = raw.pop("$defs", {})
    return _structural(raw, defs, defaults=False)


def open_api_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Institution: one institution's exam-platform synchronisation (FS, Inspera, WISEflow, "
        "Praktikportalen).",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }


def _printer_columns() -> list[dict[str, Any]]:
    ready = f'.status.conditions[?(@.type=="{ConditionType.READY}")]'
    return [
        {"name": str(ConditionType.READY), "type": "string", "jsonPath": f"{ready}.status"},
        {"name": "Status", "type": "string", "jsonPath": f"{ready}.message"},
        {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Last Run", "type": "date", "jsonPath": ".status.lastRunTime"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "priority": 1},
        {"name": "Interval", "type": "string", "jsonPath": ".spec.interval", "priority": 1},
        {"name": "Next Run", "type": "date", "jsonPath": ".status.nextRunTime", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def render_crd() -> dict[str, Any]:
    schema = open_api_schema()
    problems = structural_problems(schema)
    if problems:
        raise ValueError("the generated CRD schema is not structural: " + "; ".join(problems))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "examsync"}},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    return HEADER + yaml.safe_dump(render_crd(), sort_keys=False, allow_unicode=True, width=110)


# The chart renders the same CRD from a template (so `helm upgrade` upgrades it), behind
# `crds.install`, and kept on `helm uninstall` (deleting the CRD would delete every Institution).
_CHART_TEMPLATE = """\
{{{{- /* Generated from examsync.api by `examsync crd` (make crd); the spec equals crds/{name}.yaml.
Do not edit by hand. */ -}}}}
{{{{- if .Values.crds.install }}}}
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {name}
  labels:
    {{{{- include "examsync.labels" . | nindent 4 }}}}
  annotations:
    helm.sh/resource-policy: keep
{spec}{{{{- end }}}}
"""


def render_chart_template() -> str:
    """The chart's template of the CRD: the spec of ``render_crd()``, helm's own braces escaped."""
    spec = yaml.safe_dump({"spec": render_crd()["spec"]}, sort_keys=False, allow_unicode=True, width=110)
    # a description holding "{{" would otherwise be read as a template action
    spec = spec.replace("{{", '{{ "{{" }}')
    return _CHART_TEMPLATE.format(name=CRD_NAME, spec=spec)


def _default_fits(node: dict[str, Any], value: Any) -> bool:
    types = _JSON_TYPES.get(node.get("type", ""), (object,))
    if isinstance(value, bool) and node.get("type") in ("integer", "number"):
        return False
    return isinstance(value, types) and ("enum" not in node or value in node["enum"])


def structural_problems(node: dict[str, Any], path: str = "") -> list[str]:
    """What the API server would reject as non-structural (or silently prune to nothing)."""
    where = path or "<root>"
    problems = [f"{where}: keyword {k!r} is not allowed" for k in node if k not in ALLOWED_KEYS]
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in node and not (preserve or node.get("x-kubernetes-int-or-string")):
        problems.append(f"{where}: type is missing")
    props = node.get("properties")
    extra = node.get("additionalProperties")
    if props is not None and extra is not None:
        problems.append(f"{where}: properties and additionalProperties together")
    if extra is False:
        problems.append(f"{where}: additionalProperties: false (rely on pruning)")
    if node.get("type") == "object" and props is None and extra is None and not preserve and path != ".metadata":
        problems.append(f"{where}: object without properties would be pruned empty")
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        problems.append(f"{where}: array needs a single items schema")
    if "default" in node and (node["default"] is None or not _default_fits(node, node["default"])):
        problems.append(f"{where}: default {node['default']!r} does not fit the type")
    problems += [
        f"{where}: required {r!r} is not a property" for r in node.get("required", []) if r not in (props or {})
    ]
    if node.get("x-kubernetes-list-type") == "map":
        item_required = node.get("items", {}).get("required", [])
        problems += [
            f"{where}: list-map key {k!r} must be required"
            for k in node.get("x-kubernetes-list-map-keys", [])
            if k not in item_required
        ]
    if path == ".metadata" and set(node) - {"type", "description"}:
        problems.append(f"{where}: metadata may only be declared as type object")
    for name, sub in (props or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    if isinstance(extra, dict):
        problems += structural_problems(extra, f"{path}{{*}}")
    for rule in node.get("x-kubernetes-validations", []):
        if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str) or not rule["rule"]:
            problems.append(f"{where}: CEL rule without a rule expression")
        elif rule.get("fieldPath") and rule["fieldPath"].lstrip(".").split(".")[0] not in (props or {}):
            problems.append(f"{where}: CEL fieldPath {rule['fieldPath']!r} names no property")
    return problems


def strict_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A copy for offline validation (check-jsonschema, tests) that rejects unknown fields, as the
    API server does under kubectl's default strict field validation instead of pruning them."""
    out = dict(node)
    if "properties" in out:
        out["properties"] = {k: strict_schema(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict_schema(out["items"])
    return out


def validation_schema() -> dict[str, Any]:
    """The CRD's openAPIV3Schema as a strict JSON Schema document."""
    return {"$schema": "http://json-schema.org/draft-04/schema#", **strict_schema(open_api_schema())}
