"""`make demo`: start the sandbox, sync its institutions twice, show what happened.

The second run shows the steady state: nothing examsync sends changed in FS, so nothing is
written. Every audit record is kept in `.demo/audit.db`, and the demo ends with the history of
one assessment: created by the first run, found unchanged by the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from examsync.adapters.auditstore.history import HistoryQuery
from examsync.adapters.auditstore.store import AuditStore
from examsync.commands.history import run_history
from examsync.commands.sync import render_text, sync_manifests
from examsync.commands.upstream import configure_allowed_hosts
from examsync.domain.outcomes import Action
from examsync.logs import setup_logging
from examsync.manifests import load_manifests
from examsync.store_url import StoreUrl
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import wiseflow as wf_sim

DEMO_DIR = Path(".demo")
AUDIT_DB = DEMO_DIR / "audit.db"
AUDIT_URL = f"sqlite:///{AUDIT_DB}"  # as a user would type it
# the assessment whose history the demo ends with: INF1000, created by the first run
SHOWN_CASE = "uio-new"


def write_manifests(sandbox: Sandbox, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for doc in sandbox.manifests():
        ns = doc["metadata"].get("namespace", "default")
        # group each Institution with the Secrets of its namespace by the Institution's name
        if doc["kind"] == "Institution":
            by_name.setdefault(f"{ns}-{doc['metadata']['name']}", []).insert(0, doc)
    secrets = [d for d in sandbox.manifests() if d["kind"] == "Secret"]
    paths = []
    for name, docs in by_name.items():
        ns = docs[0]["metadata"].get("namespace", "default")
        path = folder / f"{name}.yaml"
        own = [s for s in secrets if s["metadata"].get("namespace", "default") == ns]
        path.write_text(yaml.safe_dump_all([*docs, *own], sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


async def demo(log_path: Path) -> int:
    """Two sync runs over the sandbox's institutions; logs and audit records go to `log_path`."""
    console = Console()
    async with Sandbox() as sandbox:
        console.print("[bold]Sandbox[/bold] on loopback:")
        for system, server in sandbox.servers.items():
            console.print(f"  {system:<16} {server.url}")
        paths = write_manifests(sandbox, DEMO_DIR / "manifests")
        console.print(f"Manifests: {', '.join(str(p) for p in paths)}")
        # what `examsync sync -f ... --allow-loopback` does: loopback is allowed only when asked for
        console.print(
            f"As: examsync sync {' '.join(f'-f {p}' for p in paths)} --allow-loopback "
            f"--state {DEMO_DIR / 'state.json'} --audit-db {AUDIT_URL}\n",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        allowlist = configure_allowed_hosts(allow_loopback=True)
        manifests = load_manifests(paths)
        manifests.check_hosts(allowlist)
        state = DEMO_DIR / "state.json"
        wiseflow_calls = sandbox.server("wiseflow").calls
        store = AuditStore(StoreUrl.parse(AUDIT_URL))  # what --audit-db sets up
        await store.start()
        try:
            first = await sync_manifests(manifests, state_path=state, audit_store=store)
            first_calls = wiseflow_calls["total"]
            console.print("[bold]First run[/bold] (new assessments in FS):")
            render_text(first, sys.stdout)
            # FS marks INF1000 changed without changing anything examsync sends (a candidate list,
            # say): the second run reads it again and finds its test as it should be
            sandbox.world("fs").touch(seed_no.CASES[SHOWN_CASE])
            second = await sync_manifests(manifests, state_path=state, audit_store=store)
            second_calls = wiseflow_calls["total"] - first_calls
        finally:
            await store.close()
        console.print(
            "\n[bold]Second run[/bold] (nothing examsync sends changed in FS: no writes; "
            "INF1000 was listed as changed and found unchanged):"
        )
        render_text(second, sys.stdout)
        writes = sum(
            r.actions[Action.CREATED] + r.actions[Action.UPDATED]
            for rep in second.reports
            for r in rep.pipelines.values()
        )
        console.print(f"\nWrites in the second run: {writes}")
        inspera, wiseflow = sandbox.world("inspera"), sandbox.world("wiseflow")
        console.print(f"Inspera now holds {len(inspera.tests)} tests; WISEflow {len(wiseflow.flows)} flows.")
        console.print(f"WISEflow requests: {first_calls} in the first run, {second_calls} in the second.")
        console.print("[bold]WISEflow flows and their external sources[/bold] (reference: sync state):")
        for line in _linked_flows(wiseflow):
            print(line, flush=True)
        slack = sandbox.world("slack")
        console.print(
            f"Audit records received by the Humio simulator: {len(sandbox.world('humio').events)}; "
            f"Slack messages: {len(slack.messages)}"
        )
        if slack.texts:
            console.print("[bold]Last Slack message[/bold]:")
            console.print(slack.texts[-1], markup=False, highlight=False)
        key = f"fs-inspera:{seed_no.CASES[SHOWN_CASE]}"
    console.print(f"Logs and audit records (JSON lines): {log_path}")
    console.print(f"State kept between runs: {DEMO_DIR / 'state.json'}")
    console.print(f"Audit history ({store.written} records): {AUDIT_DB}\n")
    console.print("[bold]What happened to INF1000?[/bold]")
    console.print(
        f"$ examsync history -n {seed_no.NAMESPACE} {seed_no.UIO} {key} --audit-db {AUDIT_URL}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    await run_history(
        store.url, HistoryQuery(f"{seed_no.NAMESPACE}/{seed_no.UIO}", key), "text", sys.stdout, sys.stderr
    )
    # The sandbox seeds failures on purpose (a conflict, an invalid record): the demo succeeded.
    return 0


def _linked_flows(world: wf_sim.World) -> list[str]:
    """WISEflow's flows that carry an external source: what links them to FS or Praktikportalen."""
    lines = []
    for flow in sorted(world.flows.values(), key=lambda f: f.id):
        if flow.external_sources:
            sources = ", ".join(f"{s.reference}: {s.state.value}" for s in flow.external_sources)
            lines.append(f"  {flow.id}  {flow.state.value:<21} {flow.title[:30]:<30} {sources}")
    return lines


def serve_forever(write_to: Path | None) -> None:
    async def serve() -> None:
        async with Sandbox() as sandbox:
            for system, server in sandbox.servers.items():
                print(f"{system:<16} {server.url}", flush=True)
            if write_to is not None:
                paths = write_manifests(sandbox, write_to)
                for path in paths:
                    print(f"wrote {path}", flush=True)
                # the simulators are on loopback, which examsync calls only when told to
                print(f"try: examsync sync -f {paths[0]} --allow-loopback --dry-run", flush=True)
            else:
                print("the simulators are on loopback: run examsync sync with --allow-loopback", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def main() -> None:
    DEMO_DIR.mkdir(exist_ok=True)
    (DEMO_DIR / "state.json").unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a fresh history each time, as the sandbox is fresh
        AUDIT_DB.with_name(AUDIT_DB.name + suffix).unlink(missing_ok=True)
    log_path = DEMO_DIR / "examsync.log"
    with log_path.open("w", encoding="utf-8") as log_stream:
        setup_logging("INFO", log_stream)
        code = asyncio.run(demo(log_path))
        logging.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
