"""Sandbox Slack incoming webhook: accepts messages on one path, answers plain `ok`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WEBHOOK_PATH = "/services/T0SANDBOX/B0SANDBOX/sandboxwebhook"


def webhook_url(base_url: str) -> str:
    """The webhook URL a sandbox Secret holds."""
    return base_url.rstrip("/") + WEBHOOK_PATH


@dataclass
class World:
    """Messages received, in order (each the JSON body as sent)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    @property
    def texts(self) -> list[str]:
        return [str(m.get("text", "")) for m in self.messages]


def make_app(world: World) -> web.Application:
    async def post(request: web.Request) -> web.Response:
        if request.path != WEBHOOK_PATH:
            world.rejected += 1
            return web.Response(status=404, text="no_service", content_type="text/plain")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            world.rejected += 1
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        world.messages.append(body)
        return web.Response(text="ok", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/{tail:.*}", post)
    return app
