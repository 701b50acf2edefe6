"""Command-line options backed by the settings: a flag given wins, else the environment's value
(``Settings``), else the model's default; so one model says what each of them is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from examsync.settings import LOG_LEVELS, Settings, SettingsError, env_name


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
