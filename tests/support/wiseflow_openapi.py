"""WISEflow's OpenAPI description (the committed extract) as a validator of requests and answers.

What the suite checks against is the extract plus `READINGS`: the few places where the spec's
schema contradicts its own examples or is not valid OpenAPI, each with the reason and the value
it replaces (a test fails when the spec no longer has that value, so a reading never outlives the
defect it reads around). On top, `strict`: every object in a request or an answer may hold only
the fields the spec names (the spec leaves additionalProperties open; the client must not send
fields WISEflow does not know, and the simulator must not answer fields a client could come to
rely on), and a request may carry only the query parameters its operation declares.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator._format import oas30_format_checker

from examsync_sandbox.simulators.wiseflow import Exchange
from tests.support.paths import REPO

EXTRACT = REPO / "tests/contract/wiseflow-openapi-extract.json"
HOST = "http://127.0.0.1:8080"

# The error envelope every refusal carries when the operation documents no body of its own.
ERROR_ENVELOPE = "general-api-error-response"

_MISSING = object()


def _null_or(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or null (OpenAPI 3.0 cannot put `nullable` beside a `$ref`)."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "object", "nullable": True, "enum": [None]}]}
    return {**schema, "nullable": True}


@dataclass(frozen=True)
class Reading:
    pointer: tuple[str, ...]  # from the document root
    was: Any  # the spec's value there (_MISSING: absent)
    becomes: Any
    why: str


_ERROR_REF = {"$ref": "#/components/schemas/api-error-response"}


def _schema(name: str, *rest: str) -> tuple[str, ...]:
    return ("components", "schemas", name, *rest)


READINGS: tuple[Reading, ...] = (
    Reading(
        ("components", "securitySchemes", "oauth", "flows", "clientCredentials", "scopes"),
        _MISSING,
        {},
        "OpenAPI 3.0 requires `scopes` on an OAuth2 flow; the spec leaves it out (no scope is used)",
    ),
    *(
        Reading(
            _schema(name, "properties", "error"),
            _ERROR_REF,
            _null_or(_ERROR_REF),
            "a success answer carries `error: null` (the spec's own examples; contracts/wiseflow.md)",
        )
        for name in (
            "flows-search-api-response",
            "metadata-api-response",
            "dates-get-response",
            "assessors-get-response",
            "assessor-post-response",
            "users-search-response",
        )
    ),
    *(
        Reading(
            _schema(name, "properties", "error"),
            {"type": "object"},
            _null_or({"type": "object"}),
            "a success answer carries `error: null` (the spec's example for this schema is null)",
        )
        for name in ("flow-external-sources-api-response", "flow-external-source-api-response")
    ),
    *(
        Reading(
            _schema(name, "properties", field),
            {"type": "object"},
            _null_or({"type": "object"}),
            "`data` and `error` of an answer without data are null (the spec's example)",
        )
        for name, field in (("success-api-response-no-data", "data"), ("success-api-response-no-data", "error"))
    ),
    *(
        Reading(
            _schema(name, "properties", "data"),
            {"type": "object"},
            _null_or({"type": "object"}),
            "an error answer carries `data: null` (the spec's example; contracts/wiseflow.md)",
        )
        for name in (ERROR_ENVELOPE, "error-api-response-no-data")
    ),
)


def _paging_readings(path: str, method: str, first: int, maximum: int) -> tuple[Reading, ...]:
    """The page bounds a paged operation states in words, as schema keywords."""
    base = ("paths", path, method, "parameters")
    return (
        # no change: the parameters are named by position, so their names are checked too
        Reading((*base, str(first), "name"), "offset", "offset", "the offset parameter is where it was"),
        Reading((*base, str(first + 1), "name"), "limit", "limit", "the limit parameter is where it was"),
        Reading(
            (*base, str(first), "schema", "minimum"), _MISSING, 0, "an offset counts items to skip: never negative"
        ),
        Reading((*base, str(first + 1), "schema", "minimum"), _MISSING, 1, "a page holds at least one item"),
        Reading(
            (*base, str(first + 1), "schema", "maximum"),
            _MISSING,
            maximum,
            f"the parameter's description says the limit is at most {maximum}",
        ),
    )


def _described_enum(schema: str, name: str, values: list[str]) -> Reading:
    return Reading(
        _schema(schema, "properties", name, "enum"),
        _MISSING,
        values,
        "the field's description lists the values it can have",
    )


_EXAMINATION_TYPES = ["ORDINARY", "REEXAMINATION", "REMARKING"]
_PURPOSES = ["BACHELOR", "COURSE_WORK", "EXAMINATION", "MASTER"]

READINGS = (
    *READINGS,
    *_paging_readings("/flows/search", "post", 0, 100),
    *_paging_readings("/users/search", "post", 0, 100),
    *_paging_readings("/flows/{flowId}/assessors", "get", 1, 50),
    *(
        _described_enum(schema, "examinationType", _EXAMINATION_TYPES)
        for schema in ("metadata-put-request", "metadata-response")
    ),
    *(_described_enum(schema, "purpose", _PURPOSES) for schema in ("metadata-put-request", "metadata-response")),
)


def _get(doc: Any, pointer: tuple[str, ...]) -> Any:
    for part in pointer:
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return _MISSING
    return doc


def _set(doc: Any, pointer: tuple[str, ...], value: Any) -> None:
    parent = _get(doc, pointer[:-1])
    parent[pointer[-1]] = value


def load_extract() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXTRACT.read_text(encoding="utf-8"))
    return data


def stale_readings(doc: dict[str, Any]) -> list[Reading]:
    """Readings whose spot no longer holds the value they read around."""
    return [r for r in READINGS if _get(doc, r.pointer) != r.was]


def with_readings(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for reading in READINGS:
        _set(out, reading.pointer, copy.deepcopy(reading.becomes))
    return out


def _merge_all_of(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """An allOf of objects as one object, so `additionalProperties: false` sees every field."""
    merged: dict[str, Any] = {"type": "object", "properties": {}}
    required: list[str] = []
    for listed in schema["allOf"]:
        part = schemas[listed["$ref"].rsplit("/", 1)[-1]] if "$ref" in listed else listed
        merged["properties"].update(part.get("properties", {}))
        required += part.get("required", [])
    if required:
        merged["required"] = sorted(set(required))
    return merged


def _closed(node: Any, schemas: dict[str, Any], in_properties: bool = False) -> Any:
    if isinstance(node, list):
        return [_closed(v, schemas) for v in node]
    if not isinstance(node, dict):
        return node
    if not in_properties and "allOf" in node and all("$ref" in p or "properties" in p for p in node["allOf"]):
        node = _merge_all_of(node, schemas)
    out = {k: _closed(v, schemas, in_properties=(k == "properties" and not in_properties)) for k, v in node.items()}
    if not in_properties and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def strict(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    schemas = out["components"]["schemas"]
    out["components"]["schemas"] = {name: _closed(s, schemas) for name, s in schemas.items()}
    out["paths"] = _closed(out["paths"], schemas)
    return out


@functools.cache
def spec() -> dict[str, Any]:
    """The document the suite validates against: extract + readings + strict objects."""
    return strict(with_readings(load_extract()))


@functools.cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(spec())


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("([^/]+)" if p.startswith("{") else re.escape(p) for p in parts) + "$")


@functools.cache
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    # literal segments before templated ones, as a router does
    return sorted(((t, _template_regex(t)) for t in spec()["paths"]), key=lambda t: t[0].count("{"))


def operation_of(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The spec's path template and operation for a concrete request, or None."""
    for template, regex in _templates():
        if regex.match(path):
            op = spec()["paths"][template].get(method.lower())
            if op is not None:
                return template, op
    return None


def _parameters(template: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec()["paths"][template].get("parameters", []), *op.get("parameters", [])]


def _schema_validator(schema: dict[str, Any]) -> OAS30Validator:
    return _validator_for(json.dumps(schema, sort_keys=True))


@functools.cache
def _validator_for(schema_json: str) -> OAS30Validator:
    root = {**json.loads(schema_json), "components": spec()["components"]}
    return OAS30Validator(root, format_checker=oas30_format_checker)


def request_problems(x: Exchange) -> list[str]:
    """Why the spec would not allow this request (empty: allowed)."""
    found = operation_of(x.method, x.path)
    if found is None:
        return [f"{x.method} {x.path}: no such operation in the spec"]
    template, op = found
    declared = {p["name"] for p in _parameters(template, op) if p["in"] == "query"}
    problems = [
        f"{x.method} {template}: query parameter {name!r} not declared" for name, _ in x.query if name not in declared
    ]
    if "requestBody" not in op and x.body:
        problems.append(f"{x.method} {template}: a body, but the operation takes none")
    request = MockRequest(
        HOST,
        x.method.lower(),
        x.path,
        args=dict(x.query),
        data=x.body or None,
        content_type=x.content_type or "application/json",
        headers={"Authorization": "Bearer token"},
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openapi-core does not check OAuth2 itself: the simulator does
            openapi().validate_request(request)
    except Exception as exc:
        problems.append(f"{x.method} {template}: {_describe(exc)}")
    return problems


def response_problems(x: Exchange) -> list[str]:
    """Why this answer is not one the spec allows for its request (empty: allowed).

    A status the operation does not document (a refusal of a request the spec does not allow, a
    401, a 429, a 5xx) must carry the spec's error envelope."""
    found = operation_of(x.method, x.path)
    label = f"{x.method} {x.path} -> {x.status}"
    responses = found[1]["responses"] if found else {}
    documented = responses.get(str(x.status))
    if documented is None:
        if found is not None and found[0] == "/oauth2/token" and x.status == 400:
            documented = responses["400"]
        else:
            return _against(label, x, {"$ref": f"#/components/schemas/{ERROR_ENVELOPE}"})
    content = documented.get("content") or {}
    if not content:
        return [] if not x.response_body else [f"{label}: a body, but the spec documents none"]
    media = content.get("application/json")
    if media is None:
        return [f"{label}: no JSON answer documented"]
    if not x.response_content_type.startswith("application/json"):
        return [f"{label}: content type {x.response_content_type!r}"]
    return _against(label, x, media["schema"])


def _against(label: str, x: Exchange, schema: dict[str, Any]) -> list[str]:
    try:
        body = json.loads(x.response_body)
    except ValueError:
        return [f"{label}: the answer is not JSON"]
    except RecursionError:
        return [f"{label}: the answer is JSON nested too deep to read"]
    errors = sorted(_schema_validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{label}: at {'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in errors[:5]]


def _describe(exc: Exception) -> str:
    parts = [str(exc)]
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts += [f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in schema_errors][:5]
        else:
            parts.append(str(cause))
        cause = cause.__cause__
    return "; ".join(parts)


def exchange_problems(x: Exchange, *, refusals_expected: bool = False, hostile_answers: bool = False) -> list[str]:
    """What is wrong with one exchange: a request the spec does not allow (unless such requests
    are expected, and then only if it was not refused), or an answer it does not document.

    `hostile_answers`: the test has the fault layer answer outside the spec on purpose (a huge,
    trickling or too deeply nested body), so an injected answer is not checked; the request is,
    and so is every answer the simulator itself gave."""
    problems = request_problems(x)
    if refusals_expected and problems:
        problems = [] if x.status in (400, 415) else [f"{x.method} {x.path}: not refused ({x.status})"]
    if hostile_answers and x.injected:
        return problems
    return problems + response_problems(x)


def body_problems(schema_name: str, body: Any) -> list[str]:
    """Why `body` is not an instance of one of the spec's component schemas (strict objects)."""
    validator = _schema_validator({"$ref": f"#/components/schemas/{schema_name}"})
    return [f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in validator.iter_errors(body)]


def template_of(x: Exchange) -> str:
    """`METHOD /path/{template}` of an exchange (the spec's names), or its plain path if none."""
    found = operation_of(x.method, x.path)
    return f"{x.method} {found[0] if found else x.path}"
