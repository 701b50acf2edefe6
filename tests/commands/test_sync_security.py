"""`examsync sync` as a process against hostile input: hosts nobody allowed, refused Secret types,
YAML alias bombs, and upstream text meant for the terminal (contracts/README.md, Security)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults, SimServer

ESC = "\x1b"


async def sync(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examsync",
        "sync",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if k != "EXAMSYNC_ALLOWED_HOSTS"}, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"examsync sync did not end within {timeout} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Listener:
    """A loopback server that answers every request and keeps what it was sent: a host nobody allowed."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = SimServer(app, Faults())

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path_qs, "authorization": request.headers.get("Authorization", "")})
        return web.json_response({"eksamener": []})

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    await found.server.start()
    yield found
    await found.server.stop()


def uio_docs(sb: Sandbox) -> list[dict[str, Any]]:
    """UiO's Institution (FS + Inspera + Slack + Humio on the sandbox) and its Secrets."""
    institutions, _ = sb.manifests_by_name()
    inst = copy.deepcopy(institutions["uio"])
    secrets = [
        d
        for d in sb.manifests()
        if d["kind"] == "Secret" and d["metadata"].get("namespace") == inst["metadata"].get("namespace")
    ]
    return [inst, *secrets]


def write(tmp_path: Path, docs: list[dict[str, Any]], name: str = "inst.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def secret_named(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name)


# -- hosts -------------------------------------------------------------------------------------------


async def test_sync_refuses_a_host_outside_the_default_allowlist_and_sends_it_nothing(
    sandbox: Sandbox, listener: Listener, tmp_path: Path
) -> None:
    """The attack: whoever may write an Institution names their own host as fs.baseUrl."""
    docs = uio_docs(sandbox)
    docs[0]["spec"]["fs"]["baseUrl"] = listener.url
    code, out, err = await sync("-f", str(write(tmp_path, docs)), "-o", "json")
    assert code == 2, err[-2000:]
    assert "spec.fs.baseUrl" in err and "127.0.0.1" in err
    assert out == ""
    assert listener.requests == []  # not one request, so no credential left
    assert sum(server.calls["total"] for server in sandbox.servers.values()) == 0


async def test_sync_reaches_loopback_only_with_allow_loopback_or_a_literal_entry(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = write(tmp_path, uio_docs(sandbox))
    code, _, err = await sync("-f", str(path), "--dry-run", "-o", "json")
    assert code == 2 and "spec.fs.baseUrl" in err and "--allow-loopback" in err
    assert sandbox.server("fs").calls["total"] == 0

    code, out, _ = await sync("-f", str(path), "--dry-run", "-o", "json", "--allow-loopback")
    assert code in (0, 1) and json.loads(out)["institutions"][0]["name"] == "uio"

    # a literal entry through the environment; every URL's host:port must be listed then
    ports = ",".join(f"127.0.0.1:{s.port}" for s in sandbox.servers.values())
    code, out, err = await sync("-f", str(path), "--dry-run", "-o", "json", env={"EXAMSYNC_ALLOWED_HOSTS": ports})
    assert code in (0, 1), err[-2000:]
    assert json.loads(out)["institutions"][0]["pipelines"]["fs-inspera"]["discovered"] > 0


async def test_allow_host_adds_to_the_environment_and_a_port_entry_allows_only_that_port(
    sandbox: Sandbox, listener: Listener, tmp_path: Path
) -> None:
    docs = uio_docs(sandbox)
    docs[0]["spec"]["audit"] = {"humio": {"url": listener.url, "tokenSecretRef": {"name": "uio-humio"}}}
    path = write(tmp_path, docs)
    others = [s for name, s in sandbox.servers.items() if name != "humio"]
    env = {"EXAMSYNC_ALLOWED_HOSTS": ",".join(f"127.0.0.1:{s.port}" for s in others[:2])}
    rest = [a for s in others[2:] for a in ("--allow-host", f"127.0.0.1:{s.port}")]
    code, _, err = await sync("-f", str(path), "--dry-run", *rest, env=env)
    assert code == 2
    assert f"spec.audit.humio.url: host 127.0.0.1:{listener.server.port} is not in the allowlist" in err
    assert "spec.fs.baseUrl" not in err  # FS's port is listed
    assert listener.requests == []


async def test_the_slack_webhook_in_a_secret_must_name_an_allowed_host(
    sandbox: Sandbox, listener: Listener, tmp_path: Path
) -> None:
    docs = uio_docs(sandbox)
    slack = docs[0]["spec"]["notifications"]["slack"]["webhookSecretRef"]["name"]
    secret_named(docs, slack)["stringData"] = {"url": f"https://hooks.evil.example/services/{'x' * 8}"}
    code, out, err = await sync("-f", str(write(tmp_path, docs)), "--allow-loopback")
    assert code == 2
    assert "spec.notifications.slack.webhookSecretRef: host hooks.evil.example is not in" in err
    assert "xxxxxxxx" not in err + out  # the rest of the webhook URL is a secret
    assert sandbox.server("fs").calls["total"] == 0


async def test_base_urls_with_user_info_query_or_fragment_or_a_trailing_dot_are_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    for field, url, why in [
        ("spec.fs.baseUrl", "https://someone@fsws.usit.no", "user info"),
        ("spec.inspera.baseUrl", "https://uio.inspera.no/api?next=https://evil.example", "query"),
        ("spec.inspera.baseUrl", "https://uio.inspera.no/api#x", "fragment"),
        ("spec.inspera.baseUrl", "https://uio.inspera.no./api", "dot"),
    ]:
        docs = uio_docs(sandbox)
        section, key = field.split(".")[1:]
        docs[0]["spec"][section][key] = url
        code, _, err = await sync("-f", str(write(tmp_path, docs)), "--allow-loopback")
        assert code == 2, url
        assert field in err and why in err, err


async def test_an_invalid_allowlist_entry_is_an_invalid_input(sandbox: Sandbox, tmp_path: Path) -> None:
    path = write(tmp_path, uio_docs(sandbox))
    code, _, err = await sync("-f", str(path), "--allow-host", "https://fsws.usit.no")
    assert code == 2 and "--allow-host" in err


# -- Secrets -----------------------------------------------------------------------------------------


async def test_sync_refuses_a_service_account_token_secret(sandbox: Sandbox, tmp_path: Path) -> None:
    """A service-account token holds a `token` key, as an ingest token Secret does."""
    docs = uio_docs(sandbox)
    humio = docs[0]["spec"]["audit"]["humio"]["tokenSecretRef"]["name"]
    secret = secret_named(docs, humio)
    secret["type"] = "kubernetes.io/service-account-token"
    secret["stringData"] = {"token": "eyJhbGciOiJSUzI1NiJ9.cluster-credential"}
    code, out, err = await sync("-f", str(write(tmp_path, docs)), "--allow-loopback")
    assert code == 2
    assert f"spec.audit.humio.tokenSecretRef: Secret '{humio}' is of type kubernetes.io/service-account-token" in err
    assert "cluster-credential" not in out + err
    assert sandbox.world("humio").events == [] and sandbox.server("fs").calls["total"] == 0


async def test_sync_refuses_a_secret_value_that_is_not_a_string(sandbox: Sandbox, tmp_path: Path) -> None:
    docs = uio_docs(sandbox)
    inspera = docs[0]["spec"]["inspera"]["credentialsSecretRef"]["name"]
    secret_named(docs, inspera)["stringData"] = {"apiKey": 123456789}
    code, _, err = await sync("-f", str(write(tmp_path, docs, "numbers.yaml")), "--allow-loopback")
    assert code == 2
    assert "numbers.yaml" in err and f"Secret {inspera}: stringData.apiKey: value is not a string" in err

    secret_named(docs, inspera).pop("stringData")
    secret_named(docs, inspera)["data"] = {"apiKey": ["a", "list"]}
    code, _, err = await sync("-f", str(write(tmp_path, docs, "list.yaml")), "--allow-loopback")
    assert code == 2 and "data.apiKey: value is not a string" in err


# -- YAML aliases ------------------------------------------------------------------------------------


def alias_bomb(levels: int, width: int = 10) -> list[str]:
    """A few hundred bytes of YAML whose aliases expand to width**levels nodes (`*a{levels-1}`)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return lines


async def test_sync_refuses_a_yaml_alias_bomb_naming_the_file(sandbox: Sandbox, tmp_path: Path) -> None:
    docs = uio_docs(sandbox)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    # The bomb is a Secret's value: reading it as a string expands it (10**7 nodes here; each level
    # more is ten times that, for a few bytes more).
    inspera = docs[0]["spec"]["inspera"]["credentialsSecretRef"]["name"]
    text += (
        f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {inspera}-2, namespace: examsync}}\n"
        "anchors:\n" + "".join(f"  {line}\n" for line in alias_bomb(7)) + "stringData:\n  apiKey: *a6\n"
    )
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size < 20_000
    code, out, err = await sync("-f", str(path), "--allow-loopback", timeout=60)
    assert code == 2
    assert "bomb.yaml" in err and "aliases expand past 10000 nodes" in err
    assert out == ""


async def test_small_yaml_aliases_are_still_read(sandbox: Sandbox, tmp_path: Path) -> None:
    docs = uio_docs(sandbox)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    # an anchor and an alias within the Institution's own document, as people write them
    text = text.replace("  namespace: examsync\n", "  namespace: &ns examsync\n  labels:\n    team: *ns\n", 1)
    assert "*ns" in text
    path = tmp_path / "aliases.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = await sync("-f", str(path), "--allow-loopback", "--dry-run", "-o", "json")
    assert code in (0, 1), err[-2000:]
    assert json.loads(out)["institutions"][0]["name"] == "uio"


# -- the text report ---------------------------------------------------------------------------------


class HostileFs:
    """An FS that lists one id full of terminal control and markup, and answers its errors with
    rich markup in the error message (the part of an error answer a failure repeats) and in the
    reason phrase (never repeated: a failure names the standard phrase)."""

    LISTED_ID = f"A{ESC}[2J{ESC}]0;pwned\x07[bold red]x[/bold red]\u202e"

    def __init__(self, list_status: int = 200) -> None:
        self.list_status = list_status
        app = web.Application()
        app.router.add_get("/eksamen/liste", self.listing)
        app.router.add_get("/eksamen/{system}/{id}", self.detail)
        self.server = SimServer(app, Faults())

    async def listing(self, _: web.Request) -> web.Response:
        if self.list_status != 200:
            return web.json_response(
                {"message": "[/bold] [link=https://evil.example]"},
                status=self.list_status,
                reason="[/bold] [link=https://evil.example]",
            )
        return web.json_response({"eksamener": [{"id": self.LISTED_ID}]})

    async def detail(self, _: web.Request) -> web.Response:
        return web.json_response({"message": "[/bold]"}, status=400, reason="[/bold]")


async def _hostile_run(sandbox: Sandbox, tmp_path: Path, list_status: int) -> tuple[int, str, str]:
    hostile = HostileFs(list_status)
    await hostile.server.start()
    try:
        files = write_manifests(sandbox, tmp_path / "manifests")
        uio = next(f for f in files if f.name == "examsync-uio.yaml")
        docs = list(yaml.safe_load_all(uio.read_text(encoding="utf-8")))
        docs[0]["spec"]["fs"]["baseUrl"] = hostile.server.url
        path = write(tmp_path, docs, "hostile.yaml")
        return await sync(
            "-f",
            str(path),
            "-f",
            str(next(f for f in files if f.name == "examsync-ucx.yaml")),
            "--allow-loopback",
            "--dry-run",
            env={"EXAMSYNC_RETRY_BASE_DELAY": "0.01"},
        )
    finally:
        await hostile.server.stop()


async def test_text_report_prints_upstream_markup_as_plain_text(sandbox: Sandbox, tmp_path: Path) -> None:
    """An upstream answer's text holding `[/bold]` used to crash the report (rich MarkupError)."""
    code, out, err = await _hostile_run(sandbox, tmp_path, list_status=400)
    assert "Traceback" not in err, err[-3000:]
    assert code == 1
    rows = [line for line in out.splitlines() if "examsync/" in line]
    assert any("examsync/uio" in row for row in rows) and any("examsync/ucx" in row for row in rows)
    assert "[/bold]" in out  # shown as it came, not interpreted


async def test_text_report_shows_control_characters_from_upstream_as_escapes(sandbox: Sandbox, tmp_path: Path) -> None:
    """An id FS lists reaches the failure list; its escape sequences never reach the terminal."""
    code, out, err = await _hostile_run(sandbox, tmp_path, list_status=200)
    assert "Traceback" not in err, err[-3000:]
    assert code == 1
    assert ESC not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "[bold red]x[/bold red]" in out  # visible, and markup not applied
    assert any("examsync/uio" in line for line in out.splitlines())


def test_examsync_run_refuses_an_invalid_allowlist_entry() -> None:
    from click.testing import CliRunner

    from examsync.cli import main

    result = CliRunner().invoke(main, ["run", "--standalone"], env={"EXAMSYNC_ALLOWED_HOSTS": "https://fsws.usit.no"})
    assert result.exit_code == 2
    assert "EXAMSYNC_ALLOWED_HOSTS" in result.output and "https://fsws.usit.no" in result.output
