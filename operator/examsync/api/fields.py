"""Spec fields found by walking the models: each field's path is derived from where it sits, and
its role (a URL examsync calls, a Secret reference and the keys its Secret must hold) is declared
once, as ``Annotated`` metadata on the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class UrlField:
    """Marks a field whose value is a URL examsync calls (checked against the host allowlist)."""


@dataclass(frozen=True, init=False)
class SecretKeys:
    """Marks a Secret reference: the keys its Secret must hold, and the one (if any) whose value
    is a URL examsync calls."""

    required: tuple[str, ...]
    url_key: str | None

    def __init__(self, *required: str, url_key: str | None = None) -> None:
        object.__setattr__(self, "required", required)
        object.__setattr__(self, "url_key", url_key)


def markers(info: FieldInfo) -> list[object]:
    """The field's ``Annotated`` metadata, also where it sits inside ``X | None``."""
    found: list[object] = list(info.metadata)
    pending: list[Any] = [info.annotation]
    while pending:
        annotation = pending.pop()
        if get_origin(annotation) is Annotated:
            found.extend(annotation.__metadata__)
            pending.append(get_args(annotation)[0])
        else:
            pending.extend(a for a in get_args(annotation) if a is not type(None))
    return found


def marker(info: FieldInfo, kind: type[Any]) -> Any | None:
    return next((m for m in markers(info) if isinstance(m, kind)), None)


def walk(
    model: BaseModel, prefix: str, keep: Callable[[BaseModel, str], bool] | None = None
) -> Iterator[tuple[str, FieldInfo, Any, BaseModel]]:
    """(path, field, value, owner) of every field of ``model`` and of the models under it, depth
    first in declaration order. ``keep(owner, name)`` False leaves a field and all under it out."""
    for name, info in type(model).model_fields.items():
        if keep is not None and not keep(model, name):
            continue
        value = getattr(model, name)
        path = f"{prefix}.{info.alias or name}"
        yield path, info, value, model
        if isinstance(value, BaseModel):
            yield from walk(value, path, keep)
