"""Sandbox Humio/LogScale: the structured ingest endpoint, recording every accepted batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from examsync.adapters.humio.client import INGEST_PATH

INGEST_TOKEN = "sandbox-humio-ingest-token"  # a sandbox value, not a secret


@dataclass
class World:
    """What Humio received. `requests` holds each accepted body as sent."""

    token: str = INGEST_TOKEN
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    rejected: int = 0  # requests refused (bad token or shape)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for body in self.requests for group in body for event in group["events"]]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The audit records (each event's attributes), in arrival order."""
        return [event["attributes"] for event in self.events]

    @property
    def tags(self) -> list[dict[str, str]]:
        return [group["tags"] for body in self.requests for group in body]


def _valid(body: Any) -> bool:
    if not isinstance(body, list) or not body:
        return False
    for group in body:
        if not isinstance(group, dict) or not isinstance(group.get("tags", {}), dict):
            return False
        events = group.get("events")
        if not isinstance(events, list):
            return False
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("attributes", {}), dict):
                return False
            if not isinstance(event.get("timestamp"), str):
                return False
    return True


def make_app(world: World) -> web.Application:
    async def ingest(request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {world.token}":
            world.rejected += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not _valid(body):
            world.rejected += 1
            return web.json_response({"error": "invalid_body"}, status=400)
        world.requests.append(body)
        return web.json_response({})

    app = web.Application()
    app.router.add_post(INGEST_PATH, ingest)
    return app
