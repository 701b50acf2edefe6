"""The operator against hostile Institutions: hosts nobody allowed and Secrets it must never use
(contracts/README.md, Security rule 1). In-process against the Kubernetes emulator and the sandbox."""

from __future__ import annotations

import pytest

from examsync import hosts
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import Cluster, OperatorFactory, apply_all, idle_after, uio

pytestmark = pytest.mark.looptime


def calls(sandbox: Sandbox) -> int:
    return sum(server.calls["total"] for server in sandbox.servers.values())


async def stalled_with(cluster: Cluster, reason: str) -> dict[str, str]:
    await cluster.wait_for(lambda: cluster.condition("uio", "Stalled").get("status") == "True", timeout=30)
    stalled = cluster.condition("uio", "Stalled")
    assert stalled["reason"] == reason, stalled
    ready = cluster.condition("uio", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    return stalled


async def test_operator_stalls_host_not_allowed_before_reading_any_secret(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    """The default allowlist: the sandbox's loopback hosts are nobody's real systems."""
    hosts.configure(hosts.HostAllowlist.parse(()))
    inst, _ = uio(sandbox)
    await cluster.apply(inst)  # its Secrets do not even exist: the host check comes first
    async with operator():
        stalled = await stalled_with(cluster, "HostNotAllowed")
        assert "spec.fs.baseUrl: host 127.0.0.1" in stalled["message"]
        assert "spec.inspera.baseUrl" in stalled["message"] and "spec.audit.humio.url" in stalled["message"]
        assert "Secret" not in stalled["message"]
    assert calls(sandbox) == 0
    assert cluster.emulator.status("uio").get("pipelines") == {}  # no pipeline ran


async def test_operator_stalls_a_refused_host_with_secrets_present_and_sends_nothing(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    fs_port = sandbox.server("fs").port
    others = [f"127.0.0.1:{s.port}" for name, s in sandbox.servers.items() if name != "fs"]
    hosts.configure(hosts.HostAllowlist.parse(others))  # everything but FS, by host:port
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        stalled = await stalled_with(cluster, "HostNotAllowed")
        assert stalled["message"].startswith(f"spec.fs.baseUrl: host 127.0.0.1:{fs_port} is not in the allowlist")
    assert calls(sandbox) == 0


async def test_operator_checks_the_slack_webhook_host_held_in_a_secret(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    slack = next(s for s in secrets if s["metadata"]["name"] == "uio-slack")
    slack["stringData"] = {"url": "https://hooks.evil.example/services/T0/B0/secretpart"}
    await apply_all(cluster, inst, secrets)
    async with operator():
        stalled = await stalled_with(cluster, "HostNotAllowed")
        assert "spec.notifications.slack.webhookSecretRef: host hooks.evil.example" in stalled["message"]
        assert "secretpart" not in str(cluster.emulator.status("uio"))
    assert calls(sandbox) == 0


async def test_operator_never_uses_a_service_account_token_secret(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    humio = next(s for s in secrets if s["metadata"]["name"] == "uio-humio")
    humio["type"] = "kubernetes.io/service-account-token"
    humio["stringData"] = {"token": "eyJhbGciOiJSUzI1NiJ9.cluster-credential"}
    await apply_all(cluster, inst, secrets)
    async with operator():
        stalled = await stalled_with(cluster, "SecretNotAllowed")
        assert stalled["message"] == (
            "spec.audit.humio.tokenSecretRef: Secret 'uio-humio' is of type "
            "kubernetes.io/service-account-token, which is never used"
        )
        assert "cluster-credential" not in str(cluster.emulator.status("uio"))
    assert calls(sandbox) == 0


async def test_operator_runs_with_a_literal_loopback_entry(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    """What the chart's `allowedHosts: [127.0.0.1]` gives: the sandbox is reachable, nothing else changes."""
    hosts.configure(hosts.HostAllowlist.parse(["127.0.0.1"]))
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
    assert cluster.condition("uio", "Stalled")["status"] == "False"
    assert cluster.condition("uio", "Ready")["status"] == "True"
