"""The chart rendered by the real helm: the operator Deployment, least-privilege RBAC, Service."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import click
import pytest
import yaml
from kube_schema import ROOT

CHART = ROOT / "charts/examsync"
HELM = shutil.which("helm") or str(ROOT / ".tools/bin/helm")

pytestmark = pytest.mark.skipif(not shutil.which(HELM), reason="helm not installed (scripts/tools/helm.sh)")


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HELM, "template", "examsync", str(CHART), "--namespace", "ops", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def render(*sets: str) -> list[dict[str, Any]]:
    result = helm_template(*[a for s in sets for a in ("--set", s)])
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def all_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] in ("Role", "ClusterRole") for rule in d["rules"]]


def verbs_for(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


def test_default_deployment(default_docs: list[dict[str, Any]]) -> None:
    deploy = one(default_docs, "Deployment")["spec"]
    assert deploy["replicas"] == 1 and deploy["strategy"] == {"type": "Recreate"}
    pod = deploy["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    args = container["args"]
    assert args[0] == "run" and "-A" in args and "-n" not in args and "--metrics-port=9464" in args
    assert "--standalone" in args
    liveness = next(a for a in args if a.startswith("--liveness="))
    probe = container["livenessProbe"]["httpGet"]
    port = next(p for p in container["ports"] if p["name"] == probe["port"])
    assert liveness == f"--liveness=http://0.0.0.0:{port['containerPort']}/healthz" and probe["path"] == "/healthz"
    assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EXAMSYNC_ALLOWED_HOSTS"] == ""
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume
    assert pod["serviceAccountName"] == one(default_docs, "ServiceAccount")["metadata"]["name"]


def test_default_rbac_is_cluster_wide_and_least_privilege(default_docs: list[dict[str, Any]]) -> None:
    kinds = [d["kind"] for d in default_docs]
    assert "ClusterRole" in kinds and "ClusterRoleBinding" in kinds and "Role" not in kinds
    rules = all_rules(default_docs)
    assert verbs_for(rules, "", "secrets") == {"get"}
    assert verbs_for(rules, "examsync.io", "institutions") == {"get", "list", "watch", "patch"}
    assert verbs_for(rules, "examsync.io", "institutions/status") == {"get", "list", "watch", "patch"}
    assert verbs_for(rules, "", "events") == {"create", "patch"}
    assert verbs_for(rules, "events.k8s.io", "events") == {"create", "patch"}
    assert verbs_for(rules, "kopf.dev", "clusterkopfpeerings") >= {"get", "list", "watch", "patch"}
    assert verbs_for(rules, "", "namespaces") == {"list", "watch"}
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        if rule["resources"] != ["events"]:
            assert not {"create", "update", "delete", "deletecollection"} & set(rule["verbs"]), rule
    binding = one(default_docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "examsync", "namespace": "ops"}]


def test_watch_namespaces_gives_a_role_per_namespace() -> None:
    docs = render("watchNamespaces={uio,ntnu}", "allowedHosts={fsws.usit.no,uio.inspera.no}")
    kinds = [d["kind"] for d in docs]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    roles = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    assert roles == bindings == {"uio", "ntnu"}
    rules = all_rules(docs)
    assert verbs_for(rules, "", "secrets") == {"get"}
    assert verbs_for(rules, "kopf.dev", "kopfpeerings") >= {"get", "list", "watch", "patch"}
    assert verbs_for(rules, "", "namespaces") == set()
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "-A" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "-n"] == ["uio", "ntnu"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EXAMSYNC_ALLOWED_HOSTS"] == "fsws.usit.no,uio.inspera.no"


def test_service_port_named_metrics_follows_the_value() -> None:
    docs = render("metrics.port=9500")
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9500, "targetPort": "metrics", "protocol": "TCP"}]
    deploy = one(docs, "Deployment")
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    assert "--metrics-port=9500" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]


def test_peering_replaces_standalone() -> None:
    (container,) = one(render("peering.enabled=true"), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--peering=examsync" in container["args"] and "--standalone" not in container["args"]


@pytest.mark.parametrize("bad", ["metrics.port=notaport", "watchNamespaces={Not_A_Namespace}",
                                 "image.pullPolicy=Sometimes", "unknownKey=1"])
def test_values_schema_rejects(bad: str) -> None:
    result = helm_template("--set", bad)
    assert result.returncode != 0
    key = bad.partition("=")[0].rpartition(".")[2]
    assert key in result.stderr


def test_crd_ships_with_the_chart() -> None:
    result = helm_template("--include-crds")
    assert result.returncode == 0, result.stderr
    crds = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "CustomResourceDefinition"]
    assert [c["metadata"]["name"] for c in crds] == ["institutions.examsync.io"]


def test_allowed_hosts_take_wildcards_ports_and_ip_literals() -> None:
    (container,) = one(render("allowedHosts={*.inspera.no,gw.intark.no:8443,127.0.0.1,[::1]:8080}"),
                        "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EXAMSYNC_ALLOWED_HOSTS"] == "*.inspera.no,gw.intark.no:8443,127.0.0.1,[::1]:8080"
    assert helm_template("--set", "allowedHosts={https://evil.example}").returncode != 0


def test_notes_say_who_may_create_institutions_may_use_the_namespaces_secrets() -> None:
    notes = " ".join((CHART / "templates/NOTES.txt").read_text(encoding="utf-8").split())
    assert "Who may create Institutions in a namespace can make the operator use that namespace's Secrets" in notes
    assert 'Grant "create Institutions" in a namespace like "read Secrets in that namespace"' in notes
    assert "kubernetes.io/service-account-token are never used" in notes
    assert "never" in notes and "*.inspera.no" in notes  # the default list is spelled out


def test_notes_explain_watching_and_manual_runs() -> None:
    notes = (CHART / "templates/NOTES.txt").read_text(encoding="utf-8")
    assert 'annotate inst NAME examsync.io/requested-at="$(date +%s)" --overwrite' in notes
    assert "get institutions" in notes


@pytest.mark.parametrize("sets", [(), ("watchNamespaces={uio,ntnu}", "peering.enabled=true", "extraArgs={--verbose}")])
def test_deployment_args_are_accepted_by_examsync_run(sets: tuple[str, ...]) -> None:
    """The container runs `examsync <args>`; the CLI must parse exactly what the chart passes."""
    from examsync.cli import main

    (container,) = one(render(*sets), "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    command = main.get_command(click.Context(main), args[0])
    assert command is not None
    with command.make_context(args[0], list(args[1:])) as ctx:
        params = ctx.params
    assert params["metrics_port"] == 9464
    assert params["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"
    if sets:
        assert params["namespaces"] == ("uio", "ntnu") and not params["clusterwide"]
        assert params["peering_name"] == "examsync" and not params["standalone"] and params["verbose"]
    else:
        assert params["clusterwide"] and params["namespaces"] == () and params["standalone"]
