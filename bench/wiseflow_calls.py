"""WISEflow requests per operation for the sandbox's WISEflow institutions (the demo's NTNU and UCX).

Scenarios: each institution's first run and a second run with nothing changed; NTNU once more with
no state (every assessment read again); NTNU after a run whose link of a created flow failed (the
flow is adopted). Prints JSON: requests by "METHOD /path/{id}" per scenario.

    .venv/bin/python bench/wiseflow_calls.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from typing import Any

from examsync import hosts
from examsync.api.spec import parse_institution
from examsync.credentials import StaticSecrets
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.state import InstitutionState
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import SimServer
from examsync_sandbox.simulators.wiseflow import Flow


def operation(key: str) -> str:
    """`METHOD /path` with ids and values as placeholders."""
    method, path = key.split(" ", 1)
    path = re.sub(r"/\d+", "/{id}", path)
    path = re.sub(r"(/user/userDataType/\{id\}/)[^/]+", r"\1{value}", path)
    path = re.sub(r"(/external-sources/)[^/]+(/sync/)", r"\1{reference}\2", path)
    return f"{method} {path}"


def taken(server: SimServer) -> dict[str, int]:
    """The requests counted since the last call, by operation (and clears the counts)."""
    counts = Counter[str]()
    for key, n in server.calls.items():
        if key != "total":
            counts[operation(key)] += n
    result = {**dict(sorted(counts.items())), "total": server.calls["total"]}
    server.calls.clear()
    return result


async def run(sb: Sandbox, name: str, state: InstitutionState | None) -> InstitutionState:
    institutions, secrets = sb.manifests_by_name()
    inst = parse_institution(institutions[name])
    _, new_state = await run_institution(
        inst.metadata.name,
        inst.metadata.namespace,
        inst.spec,
        StaticSecrets(secrets),
        state or InstitutionState(),
        RunOptions(audit=lambda record: None),
    )
    return new_state


async def measure() -> dict[str, Any]:
    out: dict[str, Any] = {}
    # the sandbox is on loopback, which examsync calls only when told so
    hosts.configure(hosts.HostAllowlist.parse((), allow_loopback=True))
    async with Sandbox() as sb:
        server = sb.server("wiseflow")
        for name in ("ntnu", "ucx"):
            server.calls.clear()
            state = await run(sb, name, None)
            out[f"{name}: first run"] = taken(server)
            await run(sb, name, state)
            out[f"{name}: second run, nothing changed"] = taken(server)
        await run(sb, "ntnu", None)
        out["ntnu: a run with no state (every assessment read again)"] = taken(server)
    async with Sandbox() as sb:
        server, world = sb.server("wiseflow"), sb.world("wiseflow")
        created: list[Flow] = []

        def fail_first_link(flow: Flow) -> None:
            if not created:
                server.faults.once[f"POST /flows/{flow.id}/external-sources$"] = ["400"]
            created.append(flow)

        world.on_flow_created = fail_first_link
        state = await run(sb, "ntnu", None)
        world.on_flow_created = None
        server.calls.clear()
        await run(sb, "ntnu", state)
        out["ntnu: the run after a failed link (the flow adopted)"] = taken(server)
    return out


def main() -> None:
    logging.disable(logging.CRITICAL)
    print(json.dumps(asyncio.run(measure()), indent=1))


if __name__ == "__main__":
    main()
