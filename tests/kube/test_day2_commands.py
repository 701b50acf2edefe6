"""`examsync reconcile`, `examsync suspend`, `examsync resume` against the emulator, and Flux's
`reconcile.fluxcd.io/requestedAt` honoured like our own request annotation.

The command-line tests run `examsync` as child processes logged in through a kubeconfig, beside
a running operator process; the exit-status tests drive the command's coroutine against the
emulator while the test writes the status an operator would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kmock._internal import enums, k8s, rendering

from examsync.kube import commands
from examsync.kube.run_requests import FLUX_REQUESTED_AT, REQUESTED_AT
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import (
    INSTITUTIONS,
    NAMESPACE,
    Cluster,
    Emulator,
    OperatorFactory,
    OperatorProcess,
    apply_all,
    examsync_cli,
    idle_after,
    runs,
    serve,
    uio,
    write_kubeconfig,
)


def annotation(cluster: Cluster, name: str, key: str = REQUESTED_AT) -> str | None:
    value = (cluster.emulator.institution(name).get("metadata", {}).get("annotations") or {}).get(key)
    return str(value) if value is not None else None


# -- against a running operator process ----------------------------------------------------------


async def test_reconcile_wait_exits_0_once_the_requested_run_is_done(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    kubeconfig = write_kubeconfig(tmp_path / "cli-kubeconfig", cluster.url)
    async with OperatorProcess(cluster.url, tmp_path):
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=60)
        result = await examsync_cli(
            "reconcile", "uio", "-n", NAMESPACE, "--wait", "--timeout", "90s", kubeconfig=kubeconfig
        )
        status = cluster.emulator.status("uio")

    assert result.code == 0, result.stderr
    value = annotation(cluster, "uio")
    assert value is not None
    assert status["lastHandledRequestedAt"] == value  # the operator echoed the value the command set
    assert len(status["history"]) == 2  # the requested run is the second
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert f"{NAMESPACE}/uio Ready: {ready['message']}" in result.stdout  # the Ready message is printed
    assert f"{REQUESTED_AT}={value}" in result.stdout
    # the value is the time it was set, to the microsecond
    assert abs(datetime.fromisoformat(value.replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(hours=1)


async def test_suspend_and_resume_without_namespace_use_the_kubeconfig_namespace(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    inst["spec"]["suspend"] = False
    await apply_all(cluster, inst, secrets)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, namespace=NAMESPACE)

    suspended = await examsync_cli("suspend", "uio", kubeconfig=kubeconfig)
    assert suspended.code == 0, suspended.stderr
    assert cluster.emulator.institution("uio")["spec"]["suspend"] is True
    assert f"{NAMESPACE}/uio suspended" in suspended.stdout

    # suspended: reconcile requests nothing and says why
    refused = await examsync_cli("reconcile", "uio", "--wait", kubeconfig=kubeconfig)
    assert refused.code == 2 and "suspended" in refused.stderr
    assert annotation(cluster, "uio") is None

    resumed = await examsync_cli("resume", "uio", kubeconfig=kubeconfig)
    assert resumed.code == 0, resumed.stderr
    assert cluster.emulator.institution("uio")["spec"]["suspend"] is False

    # another namespace by -n; an Institution that is not there is named
    missing = await examsync_cli("suspend", "uio", "-n", "elsewhere", kubeconfig=kubeconfig)
    assert missing.code == 2 and "elsewhere/uio not found" in missing.stderr


async def test_commands_without_a_cluster_say_so(tmp_path: Path) -> None:
    result = await examsync_cli("reconcile", "uio", kubeconfig=tmp_path / "no-such-kubeconfig")
    assert result.code == 2 and "Error:" in result.stderr


async def test_a_bad_timeout_is_refused_naming_the_option(tmp_path: Path) -> None:
    result = await examsync_cli("reconcile", "uio", "--wait", "--timeout", "soon", kubeconfig=tmp_path / "none")
    assert result.code == 2 and "--timeout" in result.stderr


# -- Flux's annotation, against the in-process operator (loop time) ----------------------------------


@pytest.mark.looptime
async def test_flux_requested_at_requests_a_run_and_is_echoed(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.patch("uio", {"metadata": {"annotations": {FLUX_REQUESTED_AT: "2026-11-23T10:00:00.123456789Z"}}})
        await cluster.wait_for(
            lambda: cluster.emulator.status("uio").get("lastHandledRequestedAt") == "2026-11-23T10:00:00.123456789Z"
        )
        await cluster.wait_for(lambda: idle_after(cluster, 2))
        assert runs(cluster) == 2

        # then our own annotation: one more run, echoed; neither value is taken for new again
        await cluster.patch("uio", {"metadata": {"annotations": {REQUESTED_AT: "1763876400"}}})
        await cluster.wait_for(lambda: cluster.emulator.status("uio").get("lastHandledRequestedAt") == "1763876400")
        await cluster.wait_for(lambda: idle_after(cluster, 3))
        await asyncio.sleep(3600)  # loop time; the next scheduled run is hours away
        assert runs(cluster) == 3

        # Flux's again, with ours still there: one run
        again = "2026-11-23T11:00:00Z"
        await cluster.patch("uio", {"metadata": {"annotations": {FLUX_REQUESTED_AT: again}}})
        await cluster.wait_for(lambda: cluster.emulator.status("uio").get("lastHandledRequestedAt") == again)
        await asyncio.sleep(3600)
        assert runs(cluster) == 4

    status = cluster.emulator.status("uio")
    assert status["handledRequests"] == {REQUESTED_AT: "1763876400", FLUX_REQUESTED_AT: "2026-11-23T11:00:00Z"}
    assert [h["result"] for h in status["history"]] == ["Succeeded"] * 4


@pytest.mark.looptime
async def test_flux_requested_at_is_not_echoed_while_suspended(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    inst["spec"]["suspend"] = True
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("reason") == "Suspended")
        await cluster.patch("uio", {"metadata": {"annotations": {FLUX_REQUESTED_AT: "7"}}})
        await asyncio.sleep(8 * 3600)
        status = cluster.emulator.status("uio")
        assert "lastHandledRequestedAt" not in status and "handledRequests" not in status and runs(cluster) == 0


# -- exit status of `reconcile --wait`, the test writing what an operator would ----------------------


def _conditions(ready: tuple[str, str, str], stalled: tuple[str, str] = ("False", "Idle")) -> list[dict[str, Any]]:
    return [
        {"type": "Ready", "status": ready[0], "reason": ready[1], "message": ready[2]},
        {"type": "Reconciling", "status": "False", "reason": "Idle", "message": ""},
        {"type": "Stalled", "status": stalled[0], "reason": stalled[1], "message": "FS refused the login"},
    ]


async def _handle_request(cluster: Cluster, conditions: list[dict[str, Any]]) -> None:
    """What an operator does with a request: a run (Reconciling True), then the echo with the outcome."""
    await cluster.wait_for(lambda: annotation(cluster, "uio") is not None, timeout=30)
    running = [
        {**c, "status": "True", "reason": "Progressing"} if c["type"] == "Reconciling" else c for c in conditions
    ]
    await cluster.request(
        "PATCH",
        f"/apis/examsync.io/v1alpha1/namespaces/{NAMESPACE}/institutions/uio/status",
        {"status": {"conditions": running}},
    )
    await asyncio.sleep(0.3)
    await cluster.request(
        "PATCH",
        f"/apis/examsync.io/v1alpha1/namespaces/{NAMESPACE}/institutions/uio/status",
        {"status": {"conditions": conditions, "lastHandledRequestedAt": annotation(cluster, "uio")}},
    )


async def _reconcile(cluster: Cluster, timeout: float = 60.0) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    api = cluster.institutions()
    try:
        code = await commands.reconcile(
            api, NAMESPACE, "uio", wait=True, timeout=timedelta(seconds=timeout), out=out.append, err=err.append
        )
    finally:
        await api.close()
    return code, out, err


@pytest.mark.parametrize(
    ("conditions", "code", "said"),
    [
        (_conditions(("True", "Succeeded", "3 created, 0 updated, 0 failed")), 0, "Ready: 3 created"),
        (_conditions(("False", "ItemsFailed", "0 created, 0 updated, 2 failed")), 1, "(ItemsFailed): 0 created"),
        (_conditions(("False", "UpstreamUnavailable", "fs-inspera: HTTP 503")), 1, "UpstreamUnavailable"),
        (
            _conditions(("False", "Unauthorized", "fs-inspera: HTTP 401"), ("True", "Unauthorized")),
            2,
            "Stalled (Unauthorized)",
        ),
    ],
    ids=["ready", "failed-items", "upstream-unavailable", "stalled"],
)
async def test_reconcile_wait_exits_as_the_run_ended(
    cluster: Cluster, sandbox: Sandbox, conditions: list[dict[str, Any]], code: int, said: str
) -> None:
    inst, _ = uio(sandbox)
    await cluster.apply(inst)
    operator_side = asyncio.create_task(_handle_request(cluster, conditions))
    got, out, err = await _reconcile(cluster)
    await operator_side
    assert got == code
    assert said in " ".join(out + err)


async def test_reconcile_wait_gives_up_after_the_timeout(cluster: Cluster, sandbox: Sandbox) -> None:
    inst, _ = uio(sandbox)
    await cluster.apply(inst)
    got, _, err = await _reconcile(cluster, timeout=1.0)  # no operator: nothing handles the request
    assert got == 2 and "not handled within 1s" in err[-1]
    assert annotation(cluster, "uio") is not None


async def test_reconcile_wait_stops_when_the_institution_is_suspended_meanwhile(
    cluster: Cluster, sandbox: Sandbox
) -> None:
    inst, _ = uio(sandbox)
    await cluster.apply(inst)

    async def suspend_later() -> None:
        await cluster.wait_for(lambda: annotation(cluster, "uio") is not None, timeout=30)
        await cluster.patch("uio", {"spec": {"suspend": True}})

    suspender = asyncio.create_task(suspend_later())
    got, _, err = await _reconcile(cluster)
    await suspender
    assert got == 2 and "suspended" in err[-1]


async def test_reconcile_of_an_institution_that_is_not_there(cluster: Cluster) -> None:
    with pytest.raises(commands.CommandError, match=f"{NAMESPACE}/nope not found"):
        api = cluster.institutions()
        try:
            await commands.reconcile(
                api, NAMESPACE, "nope", wait=True, timeout=timedelta(seconds=5), out=print, err=print
            )
        finally:
            await api.close()


class NoWatch(Emulator):
    """An API server that refuses to watch Institutions (as RBAC without `watch` would)."""

    async def _serve(self, request: rendering.Request) -> Any:
        if request.action == enums.action.WATCH and request.resource == INSTITUTIONS:
            self.watches_refused = getattr(self, "watches_refused", 0) + 1
            return await self._render_error(k8s.KubernetesError(status=403, reason="Forbidden", message="no watch"))
        return await super()._serve(request)


async def test_reconcile_wait_looks_again_every_few_seconds_where_it_may_not_watch(sandbox: Sandbox) -> None:
    async with serve(NoWatch()) as cluster:
        emulator = cluster.emulator
        inst, _ = uio(sandbox)
        await cluster.apply(inst)
        conditions = _conditions(("True", "Succeeded", "1 created, 0 updated, 0 failed"))
        operator_side = asyncio.create_task(_handle_request(cluster, conditions))
        got, out, _ = await _reconcile(cluster)
        await operator_side
    assert got == 0 and "Ready: 1 created" in out[-1]
    assert emulator.watches_refused == 1  # asked once, then polled
