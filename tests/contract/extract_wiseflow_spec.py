"""Regenerate the WISEflow OpenAPI extract the contract tests validate against.

    python tests/contract/extract_wiseflow_spec.py path/to/wiseflow-openapi.yaml

The extract holds only the operations examsync's client sends and its simulator serves
(`OPERATIONS`), the component schemas they reference (transitively) and the security schemes,
with examples dropped. It records the spec's version and the SHA-256 of the file it was made from,
so a test can say which spec the suite checks against. Tests never fetch the spec: this script is
run by hand when WISEflow publishes a new version, and the contract suite then names what broke.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

EXTRACT = Path(__file__).with_name("wiseflow-openapi-extract.json")

# (path as the spec names it, method): every WISEflow operation in contracts/wiseflow.md
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("/oauth2/token", "post"),
    ("/flows/search", "post"),
    ("/license/create/flow", "post"),
    ("/flow/{flowId}", "get"),
    ("/flows/{flowId}/external-sources", "get"),
    ("/flows/{flowId}/external-sources", "post"),
    ("/flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/done", "post"),
    ("/flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/fail", "post"),
    ("/flows/{flowId}/dates", "get"),
    ("/flows/{flowId}/dates", "patch"),
    ("/flows/{flowId}/metadata", "get"),
    ("/flows/{flowId}/metadata", "put"),
    ("/user/userDataType/{userDataType}/{value}", "get"),
    ("/users/search", "post"),
    ("/license/user", "post"),
    ("/flows/{flowId}/assessors", "get"),
    ("/flows/{flowId}/assessors", "post"),
    ("/flows/{flowId}/assessors/{assessorId}", "delete"),
    ("/user/{userId}/access-token", "post"),
)

_DROPPED = frozenset({"example", "examples", "x-codegen-request-body-name"})


def _strip(node: Any, in_properties: bool = False) -> Any:
    """The node without examples; a key inside `properties` is a field name, never dropped."""
    if isinstance(node, dict):
        return {
            k: _strip(v, in_properties=(k == "properties" and not in_properties))
            for k, v in node.items()
            if in_properties or k not in _DROPPED
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                found.add(v.rsplit("/", 1)[-1])
            else:
                found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def extract(spec: dict[str, Any], source_sha256: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, method in OPERATIONS:
        item = spec["paths"][path]
        entry = paths.setdefault(path, {})
        if "parameters" in item:
            entry["parameters"] = _strip(item["parameters"])
        entry[method] = _strip(item[method])
    schemas = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    todo = sorted(_refs(paths))
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = _strip(schemas[name])
        todo.extend(sorted(_refs(wanted[name]) - set(wanted)))
    info = dict(spec["info"])
    info.pop("description", None)
    info["x-extract"] = {
        "sourceSha256": source_sha256,
        "operations": [f"{method.upper()} {path}" for path, method in OPERATIONS],
        "regenerate": "python tests/contract/extract_wiseflow_spec.py SPEC.yaml",
    }
    return {
        "openapi": spec["openapi"],
        "info": info,
        "servers": spec["servers"],
        "security": spec.get("security", []),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(wanted.items())),
            "securitySchemes": spec["components"]["securitySchemes"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="WISEflow's OpenAPI description (YAML or JSON)")
    parser.add_argument("--output", type=Path, default=EXTRACT)
    args = parser.parse_args(argv)
    raw = args.spec.read_bytes()
    spec = yaml.safe_load(raw)
    result = extract(spec, hashlib.sha256(raw).hexdigest())
    args.output.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"{args.output}: WISEflow API {result['info']['version']}, {len(OPERATIONS)} operations, "
        f"{len(result['components']['schemas'])} schemas",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
