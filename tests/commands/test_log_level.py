"""`--log-level` (env EXAMSYNC_LOG_LEVEL) of `examsync run` and `examsync sync`: the root logger's level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from examsync.cli import main


@pytest.fixture(autouse=True)
def keep_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_params(args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """What `examsync run ARGS` parses to (the operator itself is not started)."""
    command = main.get_command(click.Context(main), "run")
    assert command is not None
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        with command.make_context("run", args) as ctx:
            return dict(ctx.params)


def test_run_defaults_to_info() -> None:
    assert run_params(["--standalone"])["log_level"] == "info"


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "WARNING"])
def test_run_accepts_each_level(level: str) -> None:
    assert str(run_params([f"--log-level={level}"])["log_level"]).lower() == level.lower()


def test_run_reads_the_environment() -> None:
    assert run_params([], {"EXAMSYNC_LOG_LEVEL": "error"})["log_level"] == "error"
    # the option wins over the environment
    assert run_params(["--log-level=debug"], {"EXAMSYNC_LOG_LEVEL": "error"})["log_level"] == "debug"


def test_run_refuses_an_unknown_level() -> None:
    with pytest.raises(click.BadParameter):
        run_params(["--log-level=verbose"])


@pytest.mark.parametrize(
    ("args", "env", "want"),
    [
        (["--log-level", "error"], {}, logging.ERROR),
        (["--log-level", "DEBUG"], {}, logging.DEBUG),
        ([], {"EXAMSYNC_LOG_LEVEL": "warning"}, logging.WARNING),
        ([], {}, logging.INFO),
    ],
)
def test_sync_sets_the_root_level(tmp_path: Path, args: list[str], env: dict[str, str], want: int) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["sync", "-f", str(empty), *args], env={"EXAMSYNC_LOG_LEVEL": "", **env})
    assert result.exit_code == 2  # no Institution in the file: invalid input, after logging was set up
    assert logging.getLogger().level == want


def test_sync_refuses_an_unknown_level(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sync", "-f", str(tmp_path / "x.yaml"), "--log-level", "loud"])
    assert result.exit_code == 2 and "loud" in result.output
