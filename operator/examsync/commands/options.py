"""Command-line options backed by the settings: a flag given wins, else the environment's value
(``Settings``), else the model's default; so one model says what each of them is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from examsync.settings import LOG_LEVELS, Settings, SettingsError, env_name
from examsync.store_url import InvalidStoreUrl, StoreUrl


def from_settings(read: Callable[[Settings], Any]) -> Callable[[], Any]:
    """A flag's default: the setting as the environment gives it, read when the command runs."""

    def default() -> Any:
        try:
            return read(Settings.load())
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None

    return default


def log_level_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--log-level` of `examsync run` and `examsync sync` (the chart's `logLevel`)."""
    return click.option(
        "--log-level",
        default=from_settings(lambda s: s.log_level),
        show_default=str(Settings.model_fields["log_level"].default),
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help=f"{help_text} (env {env_name('log_level')}).",
    )


def _store_url(ctx: click.Context, param: click.Parameter, value: StoreUrl | str | None) -> StoreUrl | None:
    """`--audit-db`: a database URL, parsed once here; the setting's value comes parsed already.
    The error never repeats the URL (it may hold a password)."""
    if value is None or isinstance(value, StoreUrl):
        return value
    try:
        return StoreUrl.parse(value)
    except InvalidStoreUrl as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def audit_db_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--audit-db URL` of `examsync sync` and `examsync history` (`examsync run` reads the setting)."""
    return click.option(
        "--audit-db",
        type=click.UNPROCESSED,  # not through str(): that would mask the password
        callback=_store_url,
        default=from_settings(lambda s: s.audit_db),
        metavar="URL",
        help=f"{help_text}: sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DB (env {env_name('audit_db')}).",
    )


def audit_retention_days_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--audit-retention-days` of `examsync sync` (the chart's `auditStore.retentionDays`)."""
    return click.option(
        "--audit-retention-days",
        type=click.FloatRange(min=0, min_open=True, max=36_500),
        default=from_settings(lambda s: s.audit_retention_days),
        show_default=f"{Settings.model_fields['audit_retention_days'].default:g}",
        help=f"Delete audit history rows older than this many days (env {env_name('audit_retention_days')}).",
    )
