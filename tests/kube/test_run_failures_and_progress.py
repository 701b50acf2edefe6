"""One pipeline's failure stays that pipeline's (Security rule 5), progress survives a run that
ends in an error (rule 6), status.progress stays bounded (rule 11) and the Stalled condition
carries upstream text only masked (rule 9): the operator in-process against the Kubernetes
emulator and the sandbox, in real time."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from examsync.domain.wiseflow import assessor_key, fs_reference
from examsync_sandbox import seed_dk, seed_nowf
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators import wiseflow as wf_sim
from tests.support.kube_harness import Cluster, OperatorFactory, apply_all, idle_after, uio

REQUESTED_AT = "examsync.io/requested-at"


def manifests(sandbox: Sandbox, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    docs = sandbox.manifests()
    inst = next(d for d in docs if d["kind"] == "Institution" and d["metadata"]["name"] == name)
    return copy.deepcopy(inst), [d for d in docs if d["kind"] == "Secret"]


def final_save_of(pipeline: str) -> Any:
    """A status hook refusing, once, the checkpoint that saves `pipeline`'s progress at its end
    (the one write that sets its watermark on a first run)."""
    refused: list[Any] = []

    def hook(patch: Any) -> int | None:
        progress = ((patch or {}).get("status") or {}).get("progress") or {}
        saved = (progress.get("pipelines") or {}).get(pipeline) or {}
        if saved.get("watermark") and not refused:
            refused.append(patch)
            return 500
        return None

    hook.refused = refused  # type: ignore[attr-defined]
    return hook


def reports_run_end(patch: Any) -> bool:
    conditions = ((patch or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Reconciling" and c.get("status") == "False" for c in conditions)


def external_ids(world: inspera_sim.World) -> Counter[str]:
    return Counter(str(t["externalTestInfo"].get("externalTestId")) for t in world.tests.values())


async def request_run(cluster: Cluster, name: str, value: str) -> None:
    await cluster.patch(name, {"metadata": {"annotations": {REQUESTED_AT: value}}})


async def test_a_pipeline_failing_hard_is_reported_after_the_others_ended_and_nothing_writes_after_the_report(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    _, more = manifests(sandbox, seed_nowf.NAME)
    # UiO also runs fs-wiseflow (nothing to do: its FS records are Inspera's), whose end fails hard
    inst["spec"]["wiseflow"] = {
        "enabled": True,
        "baseUrl": sandbox.url("wiseflow"),
        "credentialsSecretRef": {"name": "ntnu-wiseflow"},
        "fsFlows": {"enabled": True, "flowTypeId": 1, "feideUserDataTypeId": 1, "fallbackManagerUserId": 1},
    }
    inst["spec"]["inspera"]["concurrency"] = 2
    sandbox.server("inspera").faults.latency = 0.02  # fs-inspera outlasts fs-wiseflow by seconds
    inspera: inspera_sim.World = sandbox.world("inspera")
    before = external_ids(inspera)
    at_report: list[int] = []
    refuse = final_save_of("fs-wiseflow")

    def hook(patch: Any) -> int | None:
        if reports_run_end(patch) and not at_report:
            at_report.append(sum(inspera.writes.values()))
        return refuse(patch)  # type: ignore[no-any-return]

    cluster.emulator.status_hook = hook
    await apply_all(cluster, inst, [*secrets, *(s for s in more if s["metadata"]["name"] == "ntnu-wiseflow")])
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=90)
        first = cluster.emulator.status("uio")
        # a run asked for at once must not meet the first one still writing
        await request_run(cluster, "uio", "1")
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=90)

    assert refuse.refused  # the fault struck
    # nothing of the first run wrote after it reported; no test was made twice
    assert at_report == [sum(inspera.writes.values())]
    grown = {k: n for k, n in external_ids(inspera).items() if n > max(1, before.get(k, 0))}
    assert grown == {}
    # it reported once both pipelines had stopped: fs-inspera's work is in its report, and the
    # second run found nothing left to do
    counts = first["pipelines"]["fs-inspera"]
    assert counts["created"] > 5
    assert sum(inspera.writes.values()) == counts["created"] + counts["updated"]
    failures = {f["key"]: f for f in first["failures"]}
    assert failures["fs-wiseflow"]["reason"] == "UpstreamError"
    assert "progress could not be saved" in failures["fs-wiseflow"]["message"]
    assert [c["reason"] for c in first["conditions"] if c["type"] == "Ready"] == ["InternalError"]


async def test_a_run_ending_in_a_failed_status_write_keeps_its_pending_create_and_makes_no_second_flow(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = manifests(sandbox, seed_nowf.NAME)
    fs_id = seed_nowf.CASES["ntnu-new"]
    title = sandbox.world("fs").records[fs_id]["emnetittel"]
    world: wf_sim.World = sandbox.world("wiseflow")
    # the first flow created is not linked (its link is refused), so its create stays pending...
    sandbox.server("wiseflow").faults.once = {f"POST /flows/{world.peek_next_id()}/external-sources": ["400"]}
    inst["spec"]["wiseflow"]["concurrency"] = 1  # ntnu-new is created first
    # ...and the run ends in an error: the write saving the pipeline's progress at its end fails
    refuse = final_save_of("fs-wiseflow")
    cluster.emulator.status_hook = refuse
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1, "ntnu"), timeout=90)
        first = cluster.emulator.status("ntnu")
        await request_run(cluster, "ntnu", "1")
        await cluster.wait_for(lambda: idle_after(cluster, 2, "ntnu"), timeout=90)

    assert refuse.refused
    # the second run adopted the unlinked flow instead of creating another
    assert len(world.flows_titled(title)) == 1
    assert len(world.flows_with_reference(fs_reference(fs_id))) == 1
    # because the first one's last status kept the pending create
    assert fs_id in first["progress"]["pipelines"]["fs-wiseflow"]["pending"]


async def test_status_progress_stays_under_512_kib_keeping_pending_creates_and_markers_of_active_flows(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = manifests(sandbox, seed_dk.NAME)
    secret = seed_dk.CLIENT_SECRET.encode()
    spring = seed_dk.CASES["spring-activated"]
    anders = seed_dk.CASES.users["anders"]
    active_marker = assessor_key(secret, spring, anders)
    closed = [seed_dk.CASES["concluded"], *range(100_000, 111_000)]  # concluded, or long gone from WISEflow
    digests = {assessor_key(secret, flow, 7): str(flow) for flow in closed}
    digests[active_marker] = str(spring)
    pending = {"RkFLRVBFTkRJTkc=": {"title": "Et flow", "subtitle": "FAKE1", "since": datetime.now(UTC).isoformat()}}
    retry = [f"id-{n}" for n in range(900)]
    inst["status"] = {
        "progress": {
            "pipelines": {
                "praktikportalen-wiseflow": {"digests": digests},
                "fs-wiseflow": {"pending": pending, "retry": retry},  # kept as is: a pipeline this run does not run
            }
        }
    }
    assert len(json.dumps(inst["status"]["progress"])) > 512 * 1024
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1, "ucx"), timeout=90)

    progress = cluster.emulator.status("ucx")["progress"]
    assert len(json.dumps(progress, separators=(",", ":")).encode()) < 512 * 1024
    assert {k: v["title"] for k, v in progress["pipelines"]["fs-wiseflow"]["pending"].items()} == {
        k: v["title"] for k, v in pending.items()
    }
    assert progress["pipelines"]["fs-wiseflow"]["retry"] == retry
    kept = progress["pipelines"]["praktikportalen-wiseflow"]["digests"]
    assert kept[active_marker] == str(spring)
    assert not [k for k, v in kept.items() if k.startswith("assessor") and int(v) in closed]


async def test_the_stalled_condition_carries_the_upstream_message_masked_and_no_personal_data(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    faults = sandbox.server("inspera").faults
    # a national identity number where a code belongs, an e-mail in the message
    faults.answers["revoked"] = (401, {"error": "01019012345", "error_description": "key of kari@uio.no revoked"})
    faults.once = {"POST /authenticate/token/": ["answer:revoked"]}
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=60)
        await cluster.wait_for(
            lambda: any(e["reason"] == "Stalled" for e in cluster.emulator.events("uio")), timeout=30
        )

    stalled = cluster.condition("uio", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Unauthorized")
    assert "inspera token: HTTP 401 Unauthorized: key of *** revoked" in stalled["message"]
    written = json.dumps([cluster.emulator.status("uio"), cluster.emulator.events("uio")], ensure_ascii=False)
    assert "kari@uio.no" not in written and "01019012345" not in written


async def test_run_institution_reports_a_secret_store_that_refuses_or_breaks_and_never_raises(
    cluster: Cluster, sandbox: Sandbox
) -> None:
    """What the Kubernetes API does while Secrets are read ends the run with its reason: a refusal
    (401/403: Stalled), an error a later run may not meet (5xx), or a failure no rule foresaw (a
    closed connection: InternalError). None of them escapes `run_institution`."""
    from examsync.api.spec import parse_spec
    from examsync.kube.secret_source import KubeSecrets
    from examsync.pipelines.runner import run_institution
    from examsync.state import InstitutionState

    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    spec = parse_spec(inst["spec"])
    api = cluster.kube_api()
    try:
        for refusal, stalled in ((403, True), (401, True), (503, False)):
            cluster.emulator.secret_read_refusal = refusal
            report, state = await run_institution(
                "uio", "examsync", spec, KubeSecrets(api, "examsync"), InstitutionState()
            )
            assert (report.error_reason, report.stalled) == ("SecretUnreadable", stalled)
            assert report.error == f"Secret could not be read: Secret 'uio-fs': HTTP {refusal}"
            assert report.failed and state == InstitutionState()
        cluster.emulator.secret_read_refusal = None
        await api.close()  # the client is gone: its next request fails in the client itself
        report, _ = await run_institution("uio", "examsync", spec, KubeSecrets(api, "examsync"), InstitutionState())
        assert report.error_reason == "InternalError" and report.error is not None
        assert report.error.startswith("internal error: ") and not report.stalled
    finally:
        await api.close()
    assert sandbox.world("inspera").writes == {}
