"""Retention deletes rows older than the retention period, in batches, and nothing younger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from examsync.adapters.auditstore.store import AuditStore
from examsync.audit import format_timestamp
from examsync.sinks import StoreSink
from examsync.store_url import StoreUrl
from tests.support.audit_records import record_of
from tests.support.audit_store import deleted, stored_rows

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AGES = {"old": timedelta(days=401), "edge": timedelta(days=399, hours=23), "young": timedelta(days=1)}
COUNTS = {"old": 7, "edge": 3, "young": 2}


async def seed(url: str, now: datetime) -> None:
    store = AuditStore(StoreUrl.parse(url), batch_seconds=0.05)
    await store.start()
    try:
        for age, count in COUNTS.items():
            for n in range(count):
                StoreSink(store, "examsync/uio" if n % 2 else "examsync/uib").record(
                    record_of(
                        {
                            "key": f"fs-inspera:{age}-{n}",
                            "action": "unchanged",
                            "runId": age,
                            "timestamp": format_timestamp(now - AGES[age] - timedelta(seconds=n)),
                        }
                    )
                )
    finally:
        await store.close()
    assert len(await stored_rows(url)) == sum(COUNTS.values())


async def test_retention_deletes_only_old_rows_in_batches(store_url: str) -> None:
    await seed(store_url, NOW)
    before = deleted()
    store = AuditStore(StoreUrl.parse(store_url), retention_days=400, retention_batch=3)
    try:
        result = await store.delete_expired(now=NOW)
        assert (result.deleted, result.batches) == (7, 3)  # 3 + 3 + 1, one transaction each
        assert (await store.delete_expired(now=NOW)).deleted == 0
    finally:
        await store.close()
    assert deleted() - before == 7
    left = await stored_rows(store_url)
    assert sorted(r.run_id for r in left) == ["edge"] * 3 + ["young"] * 2
    assert all(NOW - r.timestamp < timedelta(days=400) for r in left)


async def test_a_started_store_keeps_retention_going_by_itself(store_url: str) -> None:
    now = datetime.now(UTC)
    await seed(store_url, now)
    store = AuditStore(StoreUrl.parse(store_url), retention_days=400, retention_batch=2)
    await store.start()  # what the operator and `examsync sync` do: retention runs in the background
    try:
        async with asyncio.timeout(60):
            while len(await stored_rows(store_url)) != 5:
                await asyncio.sleep(0.05)
    finally:
        await store.close()
    assert sorted(r.run_id for r in await stored_rows(store_url)) == ["edge"] * 3 + ["young"] * 2
