"""A throwaway PostgreSQL server for the tests and the benchmark: Debian's `postgresql` binaries
(installed by `make tools`), a cluster made by initdb in a temp dir, listening on a free loopback
port, with durability off (fsync, full pages) because nothing in it must outlive the process.

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` account (or one
made for it), its files owned by that account.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

USER = "examsync"
_ACCOUNTS = ("postgres", "examsync-pg")  # the Debian package's account, else one made here


def bindir() -> Path:
    """The newest installed server's bin dir. Fails loudly when there is none: `make tools` installs it."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "run `make tools` (scripts/tools/postgresql.sh installs Debian's postgresql)"
        )
    return Path(found[-1]).parent


def _account() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in _ACCOUNTS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _ACCOUNTS[1]],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(_ACCOUNTS[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """`start()`, `url()`, `create_database()`, `stop()` (and `start()` again), `remove()`."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.account = _account()
        self.password = secrets.token_urlsafe(18)
        self.dir = Path(tempfile.mkdtemp(prefix="examsync-pg-"))
        self.data = self.dir / "data"
        self.port = 0
        self._databases = 0
        if self.account is not None:
            os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        self._initdb()

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.dir,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
            **kwargs,
        )

    def _initdb(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self.account is not None:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> PostgresServer:
        """Start on the port used before (a restart), or a free one."""
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {self.dir} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=60 -c shared_buffers=16MB"
            )
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
                check=False,
            )
            if result.returncode == 0:
                self.port = port
                return self
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{self.log_tail()}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "server.log").read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    def url(self, database: str = "postgres", *, password: str | None = None, port: int | None = None) -> str:
        return f"postgresql://{USER}:{password or self.password}@127.0.0.1:{port or self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        self._databases += 1
        name = f"audit_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name made here, not input
        return self.url(name)
