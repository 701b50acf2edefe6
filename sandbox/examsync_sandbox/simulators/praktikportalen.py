"""A Praktikportalen simulator for the sandbox (contracts/praktikportalen.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class World:
    api_keys: set[str] = field(default_factory=set)
    # licence (Praktikportal-ID) -> period number -> period as Praktikportalen sends it
    licences: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_period(
        self,
        licence: str,
        number: str,
        *,
        title: str,
        start: str,
        end: str,
        supervisors: list[dict[str, Any]],
    ) -> dict[str, Any]:
        period = {
            "periodNumber": number,
            "title": title,
            "start": start,
            "end": end,
            "supervisors": [dict(s) for s in supervisors],
        }
        self.licences.setdefault(licence, {})[number] = period
        return period

    def period(self, licence: str, number: str) -> dict[str, Any]:
        return self.licences[licence][number]


def make_app(world: World) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") not in world.api_keys:
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    @routes.get("/v1/licenses/{licence}/periods/{number}")
    async def period(request: web.Request) -> web.Response:
        found = world.licences.get(request.match_info["licence"], {}).get(request.match_info["number"])
        if found is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(found)

    app = web.Application(middlewares=[auth])
    app.add_routes(routes)
    return app
