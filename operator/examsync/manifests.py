"""Reading Institution and Secret manifests from YAML files (the one-shot CLI)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from examsync.secrets import REQUIRED_KEYS, StaticSecrets, decode_secret
from examsync.spec import Institution, SpecError, parse_institution


class ManifestError(ValueError):
    """Invalid input: names the file, the object and the field."""


@dataclass
class ManifestSet:
    institutions: list[tuple[str, Institution]] = field(default_factory=list)  # (file, institution)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (namespace, name) -> data

    def secrets_for(self, namespace: str) -> StaticSecrets:
        """Only the Institution's own namespace, as in the cluster."""
        return StaticSecrets({name: data for (ns, name), data in self.secrets.items() if ns == namespace})

    def check_secrets(self) -> None:
        """Every Secret and key an Institution references exists in the files (else exit 2)."""
        problems = []
        for source, inst in self.institutions:
            ns = inst.metadata.namespace
            for path, name in inst.spec.secret_refs():
                data = self.secrets.get((ns, name))
                if data is None:
                    problems.append(f"{source}: {inst.key}: {path}: Secret {name!r} not found in namespace {ns!r}")
                    continue
                missing = [k for k in REQUIRED_KEYS.get(path, ()) if not data.get(k)]
                if missing:
                    problems.append(f"{source}: {inst.key}: {path}: Secret {name!r} lacks key {missing[0]!r}")
        if problems:
            raise ManifestError("\n".join(problems))


def _documents(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        for index, doc in enumerate(yaml.safe_load_all(text)):
            if doc is not None:
                yield index, doc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{path}:{where}: not valid YAML") from None


def _items(doc: Any) -> Iterable[Any]:
    if isinstance(doc, Mapping) and doc.get("kind") == "List":
        yield from doc.get("items") or []
    else:
        yield doc


def load_manifests(paths: Iterable[Path]) -> ManifestSet:
    result = ManifestSet()
    seen: set[str] = set()
    for path in paths:
        for index, doc in _documents(path):
            for obj in _items(doc):
                where = f"{path} (document {index + 1})"
                if not isinstance(obj, Mapping):
                    raise ManifestError(f"{where}: not a Kubernetes object")
                kind = obj.get("kind")
                if kind == "Secret":
                    meta = obj.get("metadata") or {}
                    if not meta.get("name"):
                        raise ManifestError(f"{where}: Secret: metadata.name: field required")
                    try:
                        data = decode_secret(obj)
                    except (ValueError, TypeError):
                        raise ManifestError(f"{where}: Secret {meta['name']}: data: not valid base64") from None
                    result.secrets[(meta.get("namespace") or "default", meta["name"])] = data
                elif kind == "Institution":
                    try:
                        inst = parse_institution(obj)
                    except SpecError as exc:
                        name = (obj.get("metadata") or {}).get("name", "?")
                        raise ManifestError("\n".join(f"{where}: {name}: {p}" for p in exc.problems)) from None
                    if inst.key in seen:
                        raise ManifestError(f"{where}: Institution {inst.key} given twice")
                    seen.add(inst.key)
                    result.institutions.append((str(path), inst))
    if not result.institutions:
        raise ManifestError("no Institution found in the given files")
    result.check_secrets()
    return result
