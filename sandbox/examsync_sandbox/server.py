"""The sandbox: every simulated outside system on loopback, seeded with realistic data.

Convention: `examsync_sandbox.simulators.<system>` defines `World` (the data store tests assert
on) and `make_app(world) -> aiohttp.web.Application`; Inspera also defines
`make_gravitee_app(world, api_key)`. Seed modules (`examsync_sandbox.seed_*`) define
`seed(sandbox)` and `manifests(sandbox) -> list[dict]` (Institutions and their Secrets).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from examsync.credentials import decode_secret
from examsync_sandbox.simulators.serving import Faults, SimServer

SYSTEMS = ("fs", "inspera", "wiseflow", "praktikportalen", "slack", "humio")
SEED_MODULES = ("examsync_sandbox.seed_no", "examsync_sandbox.seed_nowf", "examsync_sandbox.seed_dk")
GRAVITEE_API_KEY = "sandbox-gravitee-key"  # a sandbox value, not a secret


def _optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


class Sandbox:
    """Start with `async with Sandbox() as sb:`; `sb.url("fs")`, `sb.world("inspera")`, `sb.server("fs")`."""

    def __init__(self, faults: dict[str, Faults] | None = None, seed: bool = True) -> None:
        self._faults = faults or {}
        self._seed = seed
        self.worlds: dict[str, Any] = {}
        self.servers: dict[str, SimServer] = {}

    async def start(self) -> Sandbox:
        for system in SYSTEMS:
            module = _optional(f"examsync_sandbox.simulators.{system}")
            if module is None:
                continue
            world = module.World()
            self.worlds[system] = world
            server = SimServer(module.make_app(world), self._faults.get(system))
            await server.start()
            self.servers[system] = server
            if system == "inspera":
                gateway = SimServer(module.make_gravitee_app(world, GRAVITEE_API_KEY), self._faults.get("gravitee"))
                await gateway.start()
                self.servers["gravitee"] = gateway
        if self._seed:
            for name in SEED_MODULES:
                seed_module = _optional(name)
                if seed_module is not None:
                    seed_module.seed(self)
        return self

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, system: str) -> str:
        return self.servers[system].url

    def world(self, system: str) -> Any:
        return self.worlds[system]

    def server(self, system: str) -> SimServer:
        return self.servers[system]

    def manifests(self) -> list[dict[str, Any]]:
        """Every seeded Institution and its Secrets, pointing at this sandbox's URLs."""
        out: list[dict[str, Any]] = []
        for name in SEED_MODULES:
            seed_module = _optional(name)
            if seed_module is not None:
                out.extend(seed_module.manifests(self))
        return out

    def manifests_by_name(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
        """Seeded Institution manifests by name, and each Secret's decoded data by name."""
        docs = self.manifests()
        institutions = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Institution"}
        secrets = {d["metadata"]["name"]: decode_secret(d) for d in docs if d["kind"] == "Secret"}
        return institutions, secrets
