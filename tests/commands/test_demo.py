"""`make demo` as a user runs it (`examsync-sandbox demo`): two syncs over the sandbox, the history
kept in .demo/audit.db, and at the end the history of INF1000, created by the first run and
unchanged in the second."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path


async def test_demo_ends_with_the_history_of_one_assessment(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "examsync-sandbox"),
        "demo",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    text = out.decode()
    assert "Writes in the second run: 0" in text
    history = text[text.index("What happened to INF1000?") :]
    assert "--audit-db sqlite:///.demo/audit.db" in history
    lines = [line for line in history.splitlines() if "Introduksjon til programmering" in line]
    assert [line.split()[3] for line in lines] == ["unchanged", "created"]  # newest first
    with sqlite3.connect(tmp_path / ".demo" / "audit.db") as conn:
        institutions = {row[0] for row in conn.execute("SELECT DISTINCT institution FROM audit_records")}
    assert institutions == {"examsync/uio", "examsync/uib", "examsync/ntnu", "examsync/ucx"}
