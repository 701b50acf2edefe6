"""Reading Institution and Secret manifests from YAML files (the one-shot CLI)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from examsync import hosts
from examsync.api.spec import Institution, SpecError, parse_institution
from examsync.credentials import OPAQUE, Secret, SecretMissing, StaticSecrets, decode_secret, secret_problem

# The most nodes that YAML aliases may add to one file (a "billion laughs" file of a few hundred
# bytes would otherwise expand to millions); counted as the file is read, so refusing is cheap.
MAX_ALIAS_NODES = 10_000


class ManifestError(ValueError):
    """Invalid input: names the file, the object and the field."""


@dataclass
class ManifestSet:
    institutions: list[tuple[str, Institution]] = field(default_factory=list)  # (file, institution)
    secrets: dict[tuple[str, str], Secret] = field(default_factory=dict)  # (namespace, name) -> Secret

    def secrets_for(self, namespace: str) -> StaticSecrets:
        """Only the Institution's own namespace, as in the cluster."""
        own = {name: secret for (ns, name), secret in self.secrets.items() if ns == namespace}
        return StaticSecrets({name: s.data for name, s in own.items()}, {name: s.type for name, s in own.items()})

    def check_hosts(self, allowlist: hosts.HostAllowlist) -> None:
        """Every URL an Institution yields (its spec's, and the Slack webhook in its Secret) names an
        allowed host (else exit 2, naming the field and the host)."""
        problems: list[str] = []
        for source, inst in self.institutions:
            urls = list(inst.spec.urls())
            for path, name, key in inst.spec.secret_urls():
                secret = self.secrets.get((inst.metadata.namespace, name))
                if secret is not None and secret.data.get(key):
                    urls.append((path, secret.data[key]))
            try:
                hosts.check_urls(allowlist, urls)
            except hosts.HostRefused as exc:
                problems.extend(f"{source}: {inst.key}: {path}: {why}" for path, why in exc.problems)
        if problems:
            raise ManifestError("\n".join(problems))

    def check_secrets(self) -> None:
        """Every Secret and key an Institution references exists in the files (else exit 2)."""
        problems = []
        for source, inst in self.institutions:
            ns = inst.metadata.namespace
            for use in inst.spec.secret_refs():
                problem = secret_problem(use, self.secrets.get((ns, use.ref.name)))
                if isinstance(problem, SecretMissing):
                    # said as a file's reader needs it: where the Secret was looked for, or what it lacks
                    what = f"not found in namespace {ns!r}" if problem.key is None else f"lacks key {problem.key!r}"
                    problems.append(f"{source}: {inst.key}: {use.path}: Secret {use.ref.name!r} {what}")
                elif problem is not None:
                    problems.append(f"{source}: {inst.key}: {problem}")
        if problems:
            raise ManifestError("\n".join(problems))


class AliasBomb(yaml.YAMLError):
    """YAML aliases that would expand past MAX_ALIAS_NODES nodes, or refer to themselves."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts the nodes aliases add, per file, as they are met.

    Each composed node's expanded size is kept (a node and every node under it, aliases
    expanded); an alias adds its target's size. Work and memory stay linear in the file's size."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._added = 0

    def compose_document(self) -> yaml.Node | None:
        self._sizes = {}  # anchors are per document; so are the node ids kept here
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = self.anchors.get(event.anchor) if event.anchor is not None else None
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:  # the anchored node is still being read: it contains itself
                    raise AliasBomb("an alias refers to a node that contains it", event.start_mark)
                self._added += size
                if self._added > MAX_ALIAS_NODES:
                    raise AliasBomb(f"aliases expand past {MAX_ALIAS_NODES} nodes", event.start_mark)
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        return node


def _documents(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    loader = _BoundedLoader(text)
    try:
        index = 0
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc is not None:
                yield index, doc
            index += 1
    except AliasBomb as exc:
        raise ManifestError(f"{path}: line {exc.problem_mark.line + 1}: refused: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{path}:{where}: not valid YAML") from None
    finally:
        loader.dispose()


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
                    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
                        raise ManifestError(f"{where}: Secret: metadata.name: field required")
                    try:
                        data = decode_secret(obj)
                    except ValueError as exc:
                        raise ManifestError(f"{where}: Secret {meta['name']}: {exc}") from None
                    secret_type = obj.get("type") or OPAQUE
                    if not isinstance(secret_type, str):
                        raise ManifestError(f"{where}: Secret {meta['name']}: type: not a string")
                    result.secrets[(meta.get("namespace") or "default", meta["name"])] = Secret(data, secret_type)
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
