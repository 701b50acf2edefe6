"""Settings: one model holds every environment variable the package reads, docs/settings.md lists
each in its one table, and a flag given wins over the environment."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import certifi
import pytest
from click.testing import CliRunner

from examsync.adapters.upstream.client import UpstreamClient
from examsync.adapters.upstream.defaults import DEFAULTS
from examsync.cli import main
from examsync.commands.upstream import configure_allowed_hosts
from examsync.settings import Settings, SettingsError, env_name
from examsync.store_url import Backend, StoreUrl
from tests.support.paths import REPO

PACKAGE = REPO / "operator" / "examsync"
TABLE = REPO / "docs" / "settings.md"
ENV_NAME = re.compile(r"EXAMSYNC_[A-Z0-9_]+")


def variables_read(root: Path = PACKAGE) -> dict[str, str]:
    """Every environment variable named in the package: read through os.environ / os.getenv, given
    to click as `envvar=`, or spelled as an EXAMSYNC_* string anywhere. name -> where."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[object] = []
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func.endswith(("environ.get", "getenv")) and node.args:
                    names.append(getattr(node.args[0], "value", None))
                names += [getattr(k.value, "value", None) for k in node.keywords if k.arg == "envvar"]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
                names.append(getattr(node.slice, "value", None))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names += ENV_NAME.findall(node.value)
            for name in names:
                if isinstance(name, str):
                    found.setdefault(name, where)
    return found


def table_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", TABLE.read_text(encoding="utf-8"), flags=re.M))


def test_every_variable_the_package_reads_is_a_setting_and_in_the_table() -> None:
    read = variables_read()
    assert "EXAMSYNC_ALLOWED_HOSTS" in read and "EXAMSYNC_HTTP_TIMEOUT" in read
    models = {env_name(field) for field in Settings.model_fields}
    assert {name: where for name, where in read.items() if name not in models} == {}
    assert {name: where for name, where in read.items() if name not in table_variables()} == {}


def test_the_table_lists_exactly_the_settings() -> None:
    assert table_variables() == {env_name(field) for field in Settings.model_fields}


def test_the_readme_points_at_the_table() -> None:
    assert "(docs/settings.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_a_read_nowhere_declared_is_found(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text('import os\nx = os.environ.get("EXAMSYNC_NEW_KNOB")\ny = os.getenv("OTHER")\n')
    assert set(variables_read(tmp_path)) == {"EXAMSYNC_NEW_KNOB", "OTHER"}


def test_the_environment_is_read_and_a_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMSYNC_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("EXAMSYNC_ALLOWED_HOSTS", "fsws.usit.no,*.inspera.no")
    monkeypatch.setenv("EXAMSYNC_HTTP_TIMEOUT", "")  # empty: unset
    monkeypatch.setenv("EXAMSYNC_MAX_CONNECTIONS_PER_HOST", "4")
    settings = Settings.load(log_level=None, peering="shard-1")
    assert (settings.log_level, settings.peering) == ("warning", "shard-1")
    assert settings.allowed_hosts == "fsws.usit.no,*.inspera.no"
    assert (settings.http_timeout, settings.max_connections_per_host) == (30.0, 4)
    assert Settings.load(log_level="debug").log_level == "debug"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXAMSYNC_MAX_CONNECTIONS_PER_HOST", "0"),
        ("EXAMSYNC_MAX_REQUESTS_PER_SECOND_PER_HOST", "fast"),
        ("EXAMSYNC_LOG_LEVEL", "loud"),
        ("EXAMSYNC_AUDIT_DB", "mysql://app:Pw-in-url-3@db/app"),
        ("EXAMSYNC_AUDIT_RETENTION_DAYS", "0"),
        ("EXAMSYNC_AUDIT_RETENTION_DAYS", "inf"),
    ],
)
def test_a_value_that_cannot_be_used_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        Settings.load()
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["sync", "-f", str(empty)])
    assert result.exit_code == 2 and variable in result.output
    assert "Pw-in-url-3" not in result.output


def test_the_audit_store_settings_are_typed_and_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMSYNC_AUDIT_DB", "postgresql://app:Pw-in-url-4@pg.example:5432/app?sslmode=require")
    monkeypatch.setenv("EXAMSYNC_AUDIT_RETENTION_DAYS", "30.5")
    settings = Settings.load()
    assert isinstance(settings.audit_db, StoreUrl) and settings.audit_db.backend is Backend.POSTGRESQL
    assert settings.audit_db.url.password == "Pw-in-url-4" and settings.audit_retention_days == 30.5
    shown = f"{settings!r} {settings.model_dump_json()}"
    assert "Pw-in-url-4" not in shown and "postgresql://app:***@pg.example:5432/app?sslmode=require" in shown
    # a flag wins, parsed once: the same StoreUrl
    flag = StoreUrl.parse("sqlite:///audit.db")
    assert Settings.load(audit_db=flag).audit_db is flag
    monkeypatch.setenv("EXAMSYNC_AUDIT_DB", "")  # empty: no store
    assert Settings.load().audit_db is None


def test_settings_without_a_store_never_load_sqlalchemy() -> None:
    """`examsync sync` without --audit-db pays nothing for the store: SQLAlchemy is not imported."""
    code = (
        "import sys; from examsync.settings import Settings; from examsync.commands import sync; "
        "Settings.load(); assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMSYNC_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_no_module_but_the_settings_reads_the_environment() -> None:
    """The HTTP layer's timeouts, retry delays, call deadline and CA bundle come from the model too."""
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"\bos\.environ\b|\bgetenv\(|\benvvar=", path.read_text(encoding="utf-8"))
    )
    assert readers == []


def test_clients_take_their_defaults_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    monkeypatch.setenv("EXAMSYNC_HTTP_TIMEOUT", "5")
    monkeypatch.setenv("EXAMSYNC_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("EXAMSYNC_CALL_DEADLINE", "6")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setattr(DEFAULTS, "configured", None)  # read from the settings when first needed
    client = UpstreamClient("fs", "https://fsws.usit.no")
    assert (client.retry.base_delay, client.retry.max_elapsed) == (0.01, 6.0)
    assert DEFAULTS.get().timeout.read == 5.0 and DEFAULTS.get().ca_bundle == str(bundle)

    # a command sets them from the settings it loaded, flags included
    configure_allowed_hosts(settings=Settings.load(http_timeout=7, call_deadline=None))
    assert (DEFAULTS.get().timeout.read, DEFAULTS.get().retry.max_elapsed) == (7.0, 6.0)
