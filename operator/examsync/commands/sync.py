"""`examsync sync`: reconcile every Institution in the given files once, out of cluster."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import unicodedata
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from examsync import event_loop, hosts
from examsync.api.spec import Institution, Mode
from examsync.commands.store import audit_store
from examsync.commands.upstream import configure_allowed_hosts
from examsync.domain.outcomes import Action
from examsync.logs import set_institution
from examsync.manifests import ManifestError, ManifestSet, load_manifests
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.pipelines.tasks import settle
from examsync.report import InstitutionReport
from examsync.settings import Settings, SettingsError
from examsync.sinks import sink_factory
from examsync.state import InstitutionState, StateFile, write_atomic

if TYPE_CHECKING:
    from examsync.adapters.auditstore.store import AuditStore
    from examsync.store_url import StoreUrl

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

log = logging.getLogger("examsync.sync")


@dataclass
class SyncResult:
    reports: list[InstitutionReport]
    suspended: list[Institution]
    dry_run: bool = False
    state_not_saved: bool = False  # the --state file could not be written at the end

    def mode_of(self, inst: Institution) -> Mode:
        """The effective mode: DryRun when the spec or --dry-run says so."""
        return Mode.DRY_RUN if self.dry_run or inst.spec.mode == Mode.DRY_RUN else Mode.APPLY

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.state_not_saved or any(r.failed for r in self.reports) else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        institutions = [r.as_json() for r in self.reports]
        for inst in self.suspended:
            institutions.append(
                {
                    "name": inst.metadata.name,
                    "namespace": inst.metadata.namespace,
                    "mode": str(self.mode_of(inst)),
                    "suspended": True,
                    "pipelines": {},
                    "failures": [],
                    "plan": [],
                }
            )
        return {"institutions": institutions}


async def sync_manifests(
    manifests: ManifestSet,
    *,
    dry_run: bool = False,
    state_path: Path | None = None,
    loaded_state: StateFile | None = None,
    progress: Progress | None = None,
    audit_store: AuditStore | None = None,
) -> SyncResult:
    state_file = loaded_state or (StateFile.load(state_path) if state_path else StateFile())
    save_lock = asyncio.Lock()
    not_saved: list[str] = []

    async def run_one(inst: Institution) -> InstitutionReport:
        key = inst.key
        set_institution(key)  # its own task (settle): every line it logs is about this Institution

        async def checkpoint(state: InstitutionState) -> None:
            if state_path is None:
                return
            async with save_lock:
                state_file.institutions[key] = state
                # serialise on the loop (pipelines change the state there), write in a thread
                await asyncio.to_thread(write_atomic, state_path, state_file.to_json())

        task_ids: dict[str, Any] = {}

        def on_progress(pipeline: str, done: int, total: int) -> None:
            if progress is None:
                return
            if pipeline not in task_ids:
                task_ids[pipeline] = progress.add_task(f"{key} {pipeline}", total=total)
            progress.update(task_ids[pipeline], completed=done, total=total)

        options = RunOptions(dry_run=dry_run, progress=on_progress, sinks=sink_factory(audit_store))
        report, state = await run_institution(
            inst.metadata.name,
            inst.metadata.namespace,
            inst.spec,
            manifests.secrets_for(inst.metadata.namespace),
            state_file.institutions.get(key) or InstitutionState(),
            options,
            checkpoint,
        )
        try:
            await checkpoint(state)
        except OSError as exc:
            # the file keeps what was last written: progress is never taken back, only not added
            not_saved.append(key)
            log.error("state file could not be written", extra={"institution": key, "error": type(exc).__name__})
        _record_metrics(key, report, inst)
        return report

    active = [inst for _, inst in manifests.institutions if not inst.spec.suspend]
    suspended = [inst for _, inst in manifests.institutions if inst.spec.suspend]
    reports = await settle([run_one(inst) for inst in active])
    return SyncResult(list(reports), suspended, dry_run, state_not_saved=bool(not_saved))


def _record_metrics(key: str, report: InstitutionReport, inst: Institution) -> None:
    from examsync import metrics

    metrics.record_run(key, report, inst.spec)
    metrics.set_view(key, metrics.conditions_for(report), inst.spec.suspend, inst.spec.interval_delta.total_seconds())


def plain(text: object, style: str = "") -> Text:
    """Text shown exactly as it is: rich markup (`[/bold]`) is not parsed, and control characters
    (ANSI escape sequences, carriage returns, bidirectional overrides) are shown as escapes
    instead of reaching the terminal. Upstream text goes through here (Security rule 10)."""
    shown = "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _CONTROL else ch for ch in str(text))
    return Text(shown, style=style)


# Unicode categories never written as they are: controls, format characters, separators, private use
_CONTROL = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})

_ACTION_COLUMNS = (Action.CREATED, Action.UPDATED, Action.UNCHANGED, Action.SKIPPED)


def render_text(result: SyncResult, out: TextIO) -> None:
    """One row per Institution (contracts/institution.md), counts summed over its pipelines."""
    table = Table(title="examsync sync", title_justify="left")
    for column in (
        "INSTITUTION",
        "MODE",
        "PIPELINES",
        "DISCOVERED",
        "CREATED",
        "UPDATED",
        "UNCHANGED",
        "SKIPPED",
        "FAILED",
        "RESULT",
    ):
        table.add_column(
            column, justify="left" if column in ("INSTITUTION", "MODE", "PIPELINES", "RESULT") else "right"
        )
    for report in result.reports:
        pipelines = report.pipelines.values()
        totals = report.totals()
        discovered = sum(p.counts.discovered_total for p in pipelines)
        failed = sum(p.counts.failed for p in pipelines)
        fatal = [p.fatal for p in pipelines if p.fatal]
        if report.error or fatal:
            verdict = plain(report.error or fatal[0], "red")
        else:
            verdict = plain("failed", "red") if report.failed else plain("ok", "green")
        extra = [f"{k}={v}" for p in pipelines for k, v in p.counts.details().items()]
        if extra:
            verdict.append_text(plain(f" ({', '.join(extra)})", "dim"))
        table.add_row(
            plain(report.key),
            report.mode,
            plain(", ".join(report.pipelines) or "-"),
            str(discovered),
            *(str(totals.of(a)) for a in _ACTION_COLUMNS),
            str(failed),
            verdict,
        )
    for inst in result.suspended:
        table.add_row(plain(inst.key), result.mode_of(inst), "-", "", "", "", "", "", "", plain("suspended", "yellow"))
    console = Console(file=out, width=max(160, Console(file=out).width))
    console.print(table)
    failures = [(r.key, f) for r in result.reports for f in r.failures()]
    if failures:
        console.print(f"{len(failures)} failure(s):")
        for key, failure in failures[:20]:
            console.print(plain(f"  {key}  {failure.key}  {failure.reason}  {failure.message}"), highlight=False)
    plan = [entry for r in result.reports for entry in r.plan()]
    if plan:
        console.print(f"plan ({len(plan)} writes):")
        for entry in plan[:50]:
            console.print(plain(f"  {entry.action:<6} {entry.key}  {', '.join(entry.fields)}"), highlight=False)


async def _with_store(store: AuditStore | None, runs: Coroutine[Any, Any, SyncResult]) -> SyncResult:
    """The runs, with the audit history store open around them (its records flushed at the end)."""
    if store is None:
        return await runs
    await store.start()
    try:
        return await runs
    finally:
        await store.close()


def sync_command(
    files: Sequence[Path],
    *,
    dry_run: bool = False,
    output: str = "text",
    state_path: Path | None = None,
    metrics_file: Path | None = None,
    allow_hosts: Sequence[str] = (),
    allow_loopback: bool = False,
    audit_db: StoreUrl | None = None,
    audit_retention_days: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`audit_db` and `audit_retention_days` are flags over the settings: None, the setting's."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        settings = Settings.load(audit_db=audit_db, audit_retention_days=audit_retention_days)
        allowlist = configure_allowed_hosts(allow_hosts, allow_loopback=allow_loopback, settings=settings)
    except hosts.InvalidEntry as exc:
        print(f"error: {hosts.ENV_VAR} / --allow-host: {exc}", file=err)
        return EXIT_INVALID
    except SettingsError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INVALID
    try:
        manifests = load_manifests(files)
        manifests.check_hosts(allowlist)  # before any Secret is used or any request sent
    except ManifestError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INVALID
    try:
        state = StateFile.load(state_path) if state_path else None
    except (ValueError, OSError):
        print(f"error: --state {state_path}: not a readable examsync state file", file=err)
        return EXIT_INVALID
    store = audit_store(settings)
    show_progress = output == "text" and err.isatty()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=err),
        transient=True,
        disable=not show_progress,
    )
    with progress, event_loop.runner() as runner:
        result = runner.run(
            _with_store(
                store,
                sync_manifests(
                    manifests,
                    dry_run=dry_run,
                    state_path=state_path,
                    loaded_state=state,
                    progress=progress,
                    audit_store=store,
                ),
            )
        )
    if metrics_file is not None:
        from examsync import metrics

        metrics.write_textfile(metrics_file)
    if output == "json":
        json.dump(result.as_json(), out, indent=2)
        out.write("\n")
    else:
        render_text(result, out)
    return result.exit_code
