"""Huge and deeply nested answers (Security rules 2 and 5), through `examsync sync`: the call
fails as an invalid response, not retried; the item (or, for a listing, the whole source) fails;
the run goes on; reading stops at the cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults
from tests.support.sync_runs import streams_ended, sync, write_manifests

MIB = 1024 * 1024


def uio_created() -> int:
    """Tests UiO's first run creates (the seed's expectations, filled when the sandbox starts)."""
    return sum(1 for case, (action, _) in seed_no.EXPECTED.items() if case.startswith("uio-") and action == "created")


def detail_path(fs_id: str) -> str:
    return f"GET /eksamen/INSPERA/{fs_id}$"


def keyed(failures: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {f["key"]: f for f in failures}


async def test_a_listing_announcing_64_mib_fails_its_source_unread_and_the_run_goes_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fs: Faults = sandbox.server("fs").faults
    fs.once = {"GET /eksamen/liste": ["huge"]}  # Content-Length: 64 MiB
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio", "ucx"])))

    assert result.code == 1
    source = keyed(result.failures("uio"))["fs-inspera"]
    assert source["reason"] == "UpstreamError"
    assert "64 MiB refused" in source["message"] and "limit 16 MiB" in source["message"]
    assert sandbox.server("fs").count("GET", "/eksamen/liste") == 1  # not retried
    await streams_ended(fs)
    (stream,) = fs.streams
    assert stream.cut and stream.sent < stream.total  # never read to its end
    # the other Institution's run went on
    assert result.institutions["ucx"]["pipelines"]["praktikportalen-wiseflow"]["flows"] > 0
    assert "praktikportalen-wiseflow" not in keyed(result.failures("ucx"))


async def test_a_streamed_64_mib_detail_fails_its_item_only_and_reading_stops_at_the_cap(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fs: Faults = sandbox.server("fs").faults
    fs_id = seed_no.CASES["uio-new"]
    fs.once = {detail_path(fs_id): ["huge-stream"]}  # chunked, no Content-Length
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio"])))

    failure = keyed(result.failures("uio"))[f"fs-inspera:{fs_id}"]
    assert failure["reason"] == "UpstreamError"
    assert "larger than 16 MiB" in failure["message"]
    assert sandbox.server("fs").calls[f"GET /eksamen/INSPERA/{fs_id}"] == 1  # not retried
    await streams_ended(fs)
    (stream,) = fs.streams
    assert stream.cut and 16 * MIB <= stream.sent < stream.total
    assert result.institutions["uio"]["pipelines"]["fs-inspera"]["created"] == uio_created() - 1


async def test_a_detail_nested_too_deep_fails_its_item_only(sandbox: Sandbox, tmp_path: Path) -> None:
    fs_id = seed_no.CASES["uio-new"]
    sandbox.server("fs").faults.once = {detail_path(fs_id): ["deep"]}
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio"])))

    failure = keyed(result.failures("uio"))[f"fs-inspera:{fs_id}"]
    assert failure["reason"] == "UpstreamError"
    assert "JSON nested deeper than" in failure["message"]
    assert result.institutions["uio"]["pipelines"]["fs-inspera"]["created"] == uio_created() - 1


async def test_an_fs_answering_every_detail_with_64_mib_keeps_the_sync_under_150_mib_and_the_run_goes_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Security rule 2 when one upstream answers every request hugely: bodies being read share a
    process-wide budget, so memory does not grow with the connections open to that upstream."""
    fs: Faults = sandbox.server("fs").faults
    fs.always = {"GET /eksamen/INSPERA/": "huge-stream", "GET /eksamen/WISEFLOW/": "huge-stream"}
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio", "ntnu", "ucx"])))

    assert result.peak_rss_mib < 150
    for name, pipeline in (("uio", "fs-inspera"), ("ntnu", "fs-wiseflow")):
        counts = result.institutions[name]["pipelines"][pipeline]
        failures = [f for f in result.failures(name) if f["key"].startswith(f"{pipeline}:")]
        assert counts["discovered"] > 0 and counts["failed"] == counts["discovered"] == len(failures)
        assert all("larger than 16 MiB" in f["message"] for f in failures)
    # the run went on: the pipeline that reads no FS detail did its work
    assert result.institutions["ucx"]["pipelines"]["praktikportalen-wiseflow"]["assessorsAdded"] > 0
    server = sandbox.server("fs")
    await streams_ended(fs, count=server.count("GET", "/eksamen/INSPERA/") + server.count("GET", "/eksamen/WISEFLOW/"))
    assert all(s.cut and s.sent < s.total for s in fs.streams)  # none read to its end


@pytest.mark.wiseflow_hostile_answers  # the flow search is answered with JSON nested 100,000 deep
async def test_a_listing_nested_too_deep_fails_its_source_and_the_other_runs_go_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.server("wiseflow").faults.once = {"POST /flows/search": ["deep"]}
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio", "ucx"])))

    assert result.code == 1  # a report, not a crash
    source = keyed(result.failures("ucx"))["praktikportalen-wiseflow"]
    assert source["reason"] == "UpstreamError"
    assert "JSON nested deeper than" in source["message"]
    assert result.institutions["uio"]["pipelines"]["fs-inspera"]["created"] == uio_created()
