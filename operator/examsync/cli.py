"""`examsync`: the one entry point (operator, one-shot sync, CRD generation)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from examsync import __version__
from examsync.commands.options import audit_db_option, audit_retention_days_option, log_level_option
from examsync.store_url import StoreUrl

# commands that import kopf, the Kubernetes client or SQLAlchemy: loaded only when asked for
_LAZY = {
    "run": ("examsync.kube.cli", "run"),
    "reconcile": ("examsync.kube.commands", "reconcile_command"),
    "suspend": ("examsync.kube.commands", "suspend_command"),
    "resume": ("examsync.kube.commands", "resume_command"),
    "history": ("examsync.commands.history", "history"),  # SQLAlchemy
}


class _LazyGroup(click.Group):
    """`run` and the day-2 commands import kopf or the Kubernetes client, `history` SQLAlchemy;
    load them only when asked for, so `sync` and `--version` start fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY:
            module, attr = _LAZY[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="examsync")
def main() -> None:
    """Keep exam platforms (Inspera, WISEflow) in step with FS and Praktikportalen."""


@main.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML file with Institution and Secret objects (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Read everything, write nothing; report the plan.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file keeping watermark, retry set and pending creates between runs.",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write Prometheus metrics here (node-exporter textfile collector).",
)
@log_level_option("Level of the JSON log lines on stderr")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="HOST",
    help="Also allow this upstream host (repeatable; host, host:port, *.domain or an IP), besides "
    "EXAMSYNC_ALLOWED_HOSTS. With neither, only the real systems' public hosts are allowed.",
)
@click.option("--allow-loopback", is_flag=True, help="Allow loopback hosts (127.0.0.0/8, ::1, localhost): the sandbox.")
@audit_db_option("Keep every audit record in this audit history store (`examsync history` reads it)")
@audit_retention_days_option()
def sync(
    files: tuple[Path, ...],
    dry_run: bool,
    output: str,
    state_path: Path | None,
    metrics_file: Path | None,
    log_level: str,
    allow_hosts: tuple[str, ...],
    allow_loopback: bool,
    audit_db: StoreUrl | None,
    audit_retention_days: float,
) -> None:
    """Reconcile each Institution in the files once, out of cluster, and exit (0 ok, 1 failed, 2 invalid)."""
    from examsync.commands.sync import sync_command
    from examsync.logs import setup_logging

    setup_logging(log_level)
    sys.exit(
        sync_command(
            files,
            dry_run=dry_run,
            output=output,
            state_path=state_path,
            metrics_file=metrics_file,
            allow_hosts=allow_hosts,
            allow_loopback=allow_loopback,
            audit_db=audit_db,
            audit_retention_days=audit_retention_days,
        )
    )


@main.command()
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.option(
    "--chart-template",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the chart's template of the same CRD here (behind crds.install).",
)
def crd(output: Path | None, chart_template: Path | None) -> None:
    """Print the Institution CRD generated from the spec model."""
    from examsync.crd import render_chart_template, render_crd_yaml

    text = render_crd_yaml()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    if chart_template is not None:
        chart_template.write_text(render_chart_template(), encoding="utf-8")
