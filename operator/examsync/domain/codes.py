"""Codes as the sources send them: a code that looks like a number (FS's institution number and
version code, a Praktikportalen id or period number) may come as a JSON number; it is kept as text."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def number_as_text(value: Any) -> Any:
    """An integer as its text (not a bool, which is an int too); anything else as it is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


CodeText = Annotated[str | None, BeforeValidator(number_as_text)]
