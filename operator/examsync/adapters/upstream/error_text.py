"""What of an upstream's error answer may be repeated (contracts/README.md, Security rule 9).

Only: the HTTP status with its standard reason phrase (never the server's own); the error code
where it is a code; the error message with every token holding `@`, every run of six or more
digits and the names of the item's own people masked. Never a whole body.

The people are known to the pipeline handling an item, not to the HTTP layer: the pipeline puts
their names into a `MaskingContext`, and an error is rendered with it when it becomes the item's
failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MASK = "***"
MAX_MESSAGE = 200  # characters of upstream message kept
MAX_DETAILS = 3  # entries of a WISEflow `errors` list kept

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
_DIGIT_RUN = re.compile(r"\d{6,}")
_AT_TOKEN = re.compile(r"\S*@\S*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_NAME_PARTS = re.compile(r"[\s,;/()]+")


def standard_phrase(status: int | None) -> str:
    """The reason phrase RFC 9110 gives `status` ("" for a status it does not name)."""
    if status is None:
        return ""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def is_code(value: object) -> bool:
    """An error code: a letter, then up to 63 of letters, digits, `_.:-`; no run of 6+ digits."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None and not _DIGIT_RUN.search(value)


def mask_text(text: str) -> str:
    """One line of text with tokens holding `@` and runs of six or more digits masked, bounded."""
    text = _CONTROL.sub(" ", text)
    text = _AT_TOKEN.sub(MASK, text)
    text = _DIGIT_RUN.sub(MASK, text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class MaskingContext:
    """The names and identifiers of one item's people (FS responsibles, candidates, graders;
    Praktikportalen supervisors), so that upstream text about the item can be masked.

    Held in memory for the item only; it never leaves the process."""

    def __init__(self) -> None:
        self._terms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def __repr__(self) -> str:  # never the terms themselves
        return f"MaskingContext({len(self._terms)} terms)"

    def add(self, *values: object) -> None:
        """A person's name, e-mail or identifier; a name also counts word by word."""
        for value in values:
            if not isinstance(value, str):
                continue
            words = [w for w in _NAME_PARTS.split(value) if len(w) >= 2]
            for term in (value.strip(), *words):
                if len(term) >= 2 and term.lower() not in self._terms:
                    self._terms.add(term.lower())
                    self._pattern = None

    def add_people(self, people: Iterable[Mapping[str, Any]]) -> None:
        """Every text value of each person record (whatever its field names)."""
        for person in people:
            if isinstance(person, Mapping):
                self.add(*person.values())

    def mask(self, text: str) -> str:
        """`text` with e-mail-like tokens, long digit runs and this item's people masked."""
        text = mask_text(text)
        if not self._terms:
            return text
        if self._pattern is None:
            terms = sorted(self._terms, key=len, reverse=True)
            self._pattern = re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(t) for t in terms) + r")(?!\w)", re.IGNORECASE
            )
        return self._pattern.sub(MASK, text)


NO_MASKING = MaskingContext()


@dataclass(frozen=True)
class UpstreamText:
    """The code and the message an upstream gave with an error, each already safe to repeat
    except for the names of people (masked when rendered for an item)."""

    code: str | None = None
    message: str | None = None

    def render(self, masking: MaskingContext | None = None) -> str:
        """ "message (code)", "code", "message" or ""."""
        masking = masking or NO_MASKING
        message = masking.mask(self.message) if self.message else ""
        code = self.code if self.code and masking.mask(self.code) == self.code else None
        if message and code:
            return f"{message} ({code})"
        return message or code or ""

    @classmethod
    def from_payload(cls, payload: Any, status: int | None = None) -> UpstreamText:
        """Code and message from the error shapes the upstreams use.

        WISEflow `{success: false, error: {code, message, errors: [{reason, message}]}}`;
        OAuth `{error, error_description}`; Inspera and Gravitee `{error, message}` (Inspera's
        `error` is sometimes a sentence); problem+json `{title, detail}`; a bare `{code, message}`.
        """
        if not isinstance(payload, Mapping):
            return cls()
        error = payload.get("error")
        source: Mapping[str, Any] = error if isinstance(error, Mapping) else payload
        codes = [source.get(k) for k in ("code", "errorCode", "error_code")]
        if isinstance(error, str):
            codes.insert(0, error)
        texts = [source.get(k) for k in ("error_description", "message", "detail", "errorMessage")]
        # a "code" that is not one (a sentence, an e-mail, a national id) is text, masked as such
        texts += [c for c in codes if isinstance(c, str) and not is_code(c)]
        code = next((c for c in codes if is_code(c)), None)
        message = next((t for t in texts if isinstance(t, str) and t.strip()), None)
        details = _details(source.get("errors"))
        parts = [p for p in (message, *details) if p]
        # each part masked on its own, so a masked token never swallows the "; " after it
        text = mask_text("; ".join(mask_text(p) for p in parts)) if parts else ""
        if text.lower() in {standard_phrase(status).lower(), (code or "").lower()}:
            text = ""
        return cls(code=code, message=text or None)


def _details(errors: Any) -> list[str]:
    """WISEflow's per-field errors: "reason: message" for the first few."""
    if not isinstance(errors, list):
        return []
    out = []
    for entry in errors[:MAX_DETAILS]:
        if isinstance(entry, Mapping):
            reason, message = entry.get("reason"), entry.get("message")
            text = ": ".join(str(p) for p in (reason, message) if isinstance(p, str | int) and p != "")
            if text:
                out.append(text)
    return out
