"""The chart's audit store values: the URL reaches `examsync run` as EXAMSYNC_AUDIT_DB from a Secret
(the chart's own, or an existing one such as CloudNativePG's `-app` Secret), never as a literal."""

from __future__ import annotations

from typing import Any

from tests.support.helm_chart import helm_template, needs_helm, one, render

pytestmark = needs_helm


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e for e in container(docs)["env"]}


def test_no_audit_store_by_default() -> None:
    docs = render()
    assert not [name for name in env(docs) if name.startswith("EXAMSYNC_AUDIT")]
    assert not [d for d in docs if d["kind"] == "Secret"]


def test_url_goes_into_a_secret_of_the_chart_and_reaches_the_pod_from_there() -> None:
    url = "postgresql://examsync:pw-in-values@pg.example:5432/audit?sslmode=require"
    docs = render(f"auditStore.url={url}", "auditStore.retentionDays=90")
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "examsync-audit-store" and secret["stringData"] == {"url": url}
    variables = env(docs)
    assert variables["EXAMSYNC_AUDIT_DB"] == {
        "name": "EXAMSYNC_AUDIT_DB",
        "valueFrom": {"secretKeyRef": {"name": "examsync-audit-store", "key": "url"}},
    }
    assert variables["EXAMSYNC_AUDIT_RETENTION_DAYS"]["value"] == "90"
    assert "pw-in-values" not in str(one(docs, "Deployment"))  # the password is in the Secret only


def test_an_existing_secret_such_as_cloudnativepgs_app_secret() -> None:
    docs = render("auditStore.existingSecret=audit-db-app", "auditStore.existingSecretKey=uri")
    assert not [d for d in docs if d["kind"] == "Secret"]  # the operator that made it owns it
    variables = env(docs)
    assert variables["EXAMSYNC_AUDIT_DB"]["valueFrom"] == {"secretKeyRef": {"name": "audit-db-app", "key": "uri"}}
    assert variables["EXAMSYNC_AUDIT_RETENTION_DAYS"]["value"] == "400"  # the contract's default
    default_key = env(render("auditStore.existingSecret=audit-db"))["EXAMSYNC_AUDIT_DB"]
    assert default_key["valueFrom"]["secretKeyRef"]["key"] == "url"  # the contract's key


def test_wrong_audit_store_values_are_refused() -> None:
    for sets in (
        ["auditStore.url=postgresql://a:b@h/db", "auditStore.existingSecret=db-app"],  # which one?
        ["auditStore.url=mysql://a:b@h/db"],
        ["auditStore.retentionDays=0"],
        ["auditStore.existingSecret=Not_A_Name"],
    ):
        result = helm_template(*[a for s in sets for a in ("--set", s)])
        assert result.returncode != 0, sets
        assert "auditStore" in result.stderr, result.stderr
