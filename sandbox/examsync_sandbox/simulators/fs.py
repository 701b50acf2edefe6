"""Sandbox FS: the DigEks `eksamen` service on loopback (contracts/fs.md).

`World` holds full detail records keyed by FS id; the list call filters them the way FS does
(institution, exam/grading/justification system, exam date window, change cut-off). Tests and
seeds use `add`, `touch`, `remove` and `add_broken`.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from examsync.domain.fs import encode_id

# The sandbox's FS account; seeds put these into their Secrets.
USERNAME = "examsync-fs"
PASSWORD = "sandbox-fs-password"  # a sandbox value, not a secret

SYSTEMS = ("INSPERA", "WISEFLOW")
_SYSTEM_FIELDS = ("eksamenssystem", "sensursystem", "begrunnelsessystem")
LIST_PARAMS = ("institusjonsnr", "datofra", "datotil", "eksamenssystem", "sistEndret")


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


@dataclass
class World:
    """FS's data. `records` are detail dicts as FS answers them; ids in `gone` are listed but 404."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    credentials: dict[str, str] = field(default_factory=lambda: {USERNAME: PASSWORD})
    list_queries: list[dict[str, str]] = field(default_factory=list)  # decoded params of each list call
    raw_list_queries: list[str] = field(default_factory=list)
    detail_reads: list[str] = field(default_factory=list)  # ids read, in order

    def add(self, record: dict[str, Any], changed: datetime | None = None) -> str:
        """Store a detail record (a deep copy); its id is derived from its key fields when absent."""
        stored = copy.deepcopy(record)
        if not stored.get("id"):
            stored["id"] = encode_id(
                str(stored["institusjonsnr"]),
                stored["emnekode"],
                versjonskode=str(stored.get("versjonskode", "1")),
                vurdkombkode=stored.get("vurdkombkode", "SKR"),
                arstall=int(stored["arstall"]),
                vurdtidkode=stored.get("vurdtidkode", "HØST"),
            )
        if changed is not None:
            stored["sistEndret"] = _iso(changed)
        stored.setdefault("sistEndret", _iso(datetime.now(UTC)))
        fs_id = str(stored["id"])
        self.records[fs_id] = stored
        self.gone.discard(fs_id)
        return fs_id

    def add_broken(
        self, record: dict[str, Any], missing: tuple[str, ...] = ("start",), changed: datetime | None = None
    ) -> str:
        """A record FS lists whose detail lacks required fields (e.g. `start`)."""
        fs_id = self.add(record, changed)
        for name in missing:
            if name != "id":
                self.records[fs_id].pop(name, None)
        return fs_id

    def touch(self, fs_id: str, when: datetime | None = None, **changes: Any) -> None:
        """Change a record (optionally some fields) and its sistEndret."""
        record = self.records[fs_id]
        record.update(changes)
        record["sistEndret"] = _iso(when or datetime.now(UTC))

    def remove(self, fs_id: str, when: datetime | None = None) -> None:
        """The assessment is deleted: FS still lists the id as changed, the detail answers 404."""
        self.gone.add(fs_id)
        self.records[fs_id]["sistEndret"] = _iso(when or datetime.now(UTC))

    def listed(self, params: dict[str, str]) -> list[dict[str, str]]:
        """What the list call answers for these (decoded, validated) parameters."""
        institution = params["institusjonsnr"]
        system = params["eksamenssystem"].upper()
        date_from = date.fromisoformat(params["datofra"])
        date_to = date.fromisoformat(params["datotil"])
        cutoff = _parse_time(params["sistEndret"])
        assert cutoff is not None
        out = []
        for fs_id, record in self.records.items():
            if str(record.get("institusjonsnr")) != institution:
                continue
            if not any(str(record.get(name) or "").upper() == system for name in _SYSTEM_FIELDS):
                continue
            start = _parse_time(record.get("start"))
            if start is not None and not date_from <= start.date() <= date_to:
                continue
            changed = _parse_time(record.get("sistEndret"))
            if changed is None or changed < cutoff:
                continue
            out.append({"id": fs_id, "sistEndret": str(record["sistEndret"])})
        return out


def _authorized(world: World, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeError):
        return False
    return world.credentials.get(user) == password


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code}, status=status)


def make_app(world: World) -> web.Application:
    @web.middleware
    async def basic_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if not _authorized(world, request):
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": 'Basic realm="fsws"'}
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def list_changed(request: web.Request) -> web.Response:
        # parse_qsl decodes `+` as a space, as FS does: an unencoded offset then fails to parse
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        missing = [name for name in LIST_PARAMS if not params.get(name)]
        if missing:
            return _error(400, "missing_parameter")
        try:
            date.fromisoformat(params["datofra"])
            date.fromisoformat(params["datotil"])
        except ValueError:
            return _error(400, "invalid_date")
        if _parse_time(params["sistEndret"]) is None:
            return _error(400, "invalid_sistEndret")
        if params["eksamenssystem"].upper() not in SYSTEMS:
            return _error(400, "invalid_eksamenssystem")
        world.list_queries.append(params)
        world.raw_list_queries.append(request.rel_url.raw_query_string)
        return web.json_response({"eksamener": world.listed(params)})

    async def detail(request: web.Request) -> web.Response:
        # the id is percent-encoded with no safe characters: split the raw path, then decode
        raw = request.raw_path.split("?", 1)[0]
        parts = raw.split("/")
        if len(parts) != 4 or parts[1] != "eksamen":
            return _error(404, "not_found")
        system, fs_id = unquote(parts[2]).upper(), unquote(parts[3])
        if system not in SYSTEMS:
            return _error(404, "not_found")
        world.detail_reads.append(fs_id)
        record = world.records.get(fs_id)
        if record is None or fs_id in world.gone:
            return _error(404, "not_found")
        systems = {str(record.get(name) or "").upper() for name in _SYSTEM_FIELDS}
        if systems - {""} and system not in systems:
            return _error(404, "not_found")
        return web.json_response(record)

    app = web.Application(middlewares=[basic_auth])
    app.router.add_get("/eksamen/liste", list_changed)
    app.router.add_get("/eksamen/{rest:.*}", detail)
    return app
