"""The chart rendered by the real helm: the operator Deployment, least-privilege RBAC, Service, and
the optional parts (peering, PDB, NetworkPolicy, pod options); values.schema.json covers every key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from tests.support.helm_chart import ALL_OPTIONS, CHART, HELM, helm_template, needs_helm, one, render
from tests.support.paths import REPO

pytestmark = needs_helm


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return pod


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
    assert "--standalone" in args and "--log-level=info" in args
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


def test_pod_name_reaches_the_operator_for_its_events(default_docs: list[dict[str, Any]]) -> None:
    """Events name the pod as their reporting instance: POD_NAME from the downward API."""
    (container,) = pod_of(default_docs)["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    from examsync.settings import env_name

    assert env_name("pod_name") == "POD_NAME"  # the variable the operator reads it from


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


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.port=notaport",
        "watchNamespaces={Not_A_Namespace}",
        "image.pullPolicy=Sometimes",
        "unknownKey=1",
        "logLevel=trace",
        "crds.install=yes",
        "networkPolicy.kubeApiServer.ports={}",
        "podDisruptionBudget.minAvailable=2",
        "allowedHosts={fsws.usit.no.}",
        "allowedHosts={https://fsws.usit.no}",
        "extraVolumeMounts[0].name=ca",
        "topologySpreadConstraints[0].maxSkew=1",
        "tolerations[0].effect=Sometimes",
    ],
)
def test_values_schema_rejects(bad: str) -> None:
    result = helm_template("--set", bad)
    assert result.returncode != 0
    path = bad.partition("=")[0]
    key = path.rpartition(".")[2] if "[" not in path else path.partition("[")[0]
    assert key in result.stderr


def test_crd_ships_with_the_chart(default_docs: list[dict[str, Any]]) -> None:
    crds = kinds(default_docs, "CustomResourceDefinition")
    assert [c["metadata"]["name"] for c in crds] == ["institutions.examsync.io"]
    assert crds[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_default_render_holds_nothing_optional(default_docs: list[dict[str, Any]]) -> None:
    assert sorted(d["kind"] for d in default_docs) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
            "CustomResourceDefinition",
        ]
    )


def test_more_replicas_roll_with_peering() -> None:
    docs = render("replicas=2")
    deploy = one(docs, "Deployment")["spec"]
    assert deploy["replicas"] == 2
    assert deploy["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    (container,) = deploy["template"]["spec"]["containers"]
    assert "--peering=examsync" in container["args"] and "--standalone" not in container["args"]
    crds = {c["metadata"]["name"]: c for c in kinds(docs, "CustomResourceDefinition")}
    assert set(crds) == {"institutions.examsync.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for crd in crds.values():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # the cluster does not serve kopf's kinds yet (helm template knows none): the peering object is
    # created after the CRDs (a hook), with the release's ownership so the next upgrade adopts it
    (peering,) = kinds(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "examsync"
    assert peering["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install,post-upgrade",
        "meta.helm.sh/release-name": "examsync",
        "meta.helm.sh/release-namespace": "ops",
    }
    assert peering["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert kinds(docs, "PodDisruptionBudget") == []  # only when asked for


@pytest.mark.parametrize("namespaces", [(), ("watchNamespaces={uio,ntnu}",)])
def test_peering_object_is_part_of_the_release_once_the_cluster_serves_its_kind(namespaces: tuple[str, ...]) -> None:
    kind = "KopfPeering" if namespaces else "ClusterKopfPeering"
    sets = [a for s in ("replicas=2", *namespaces) for a in ("--set", s)]
    result = helm_template(*sets, "--api-versions", f"kopf.dev/v1/{kind}")
    assert result.returncode == 0, result.stderr
    objects = kinds([d for d in yaml.safe_load_all(result.stdout) if d], kind)
    assert len(objects) == (2 if namespaces else 1)
    for peering in objects:
        assert "annotations" not in peering["metadata"], "an ordinary object, never a hook again"


def test_kopf_peering_crds_are_those_of_the_file() -> None:
    shipped = [d for d in yaml.safe_load_all((CHART / "files/kopf-peering-crds.yaml").read_text()) if d]
    rendered = kinds(render("replicas=2"), "CustomResourceDefinition")[1:]
    assert [r["spec"] for r in rendered] == [s["spec"] for s in shipped]


def test_peering_per_watched_namespace_and_without_crds() -> None:
    docs = render("replicas=3", "watchNamespaces={uio,ntnu}", "crds.install=false", "peering.name=exams")
    assert kinds(docs, "CustomResourceDefinition") == [] and kinds(docs, "ClusterKopfPeering") == []
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in kinds(docs, "KopfPeering")} == {
        ("uio", "exams"),
        ("ntnu", "exams"),
    }
    (container,) = pod_of(docs)["containers"]
    assert "--peering=exams" in container["args"]


def test_peering_with_one_replica_keeps_recreate() -> None:
    docs = render("peering.enabled=true")
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert kinds(docs, "ClusterKopfPeering")


def test_pod_disruption_budget_only_with_standbys() -> None:
    assert kinds(render("podDisruptionBudget.enabled=true"), "PodDisruptionBudget") == []
    docs = render("podDisruptionBudget.enabled=true", "replicas=2")
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_network_policy() -> None:
    docs = render("networkPolicy.enabled=true", "metrics.port=9500")
    policy = one(docs, "NetworkPolicy")["spec"]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    # ingress: the two named container ports only, from anywhere by default
    ports = {(p["port"], p["protocol"]) for rule in policy["ingress"] for p in rule["ports"]}
    assert ports == {("metrics", "TCP"), ("health", "TCP")}
    assert all("from" not in rule for rule in policy["ingress"])
    names = {p["name"] for p in pod_of(docs)["containers"][0]["ports"]}
    assert names == {"metrics", "health"}
    # egress: DNS, the API server's ports and 443, to any address; nothing else
    egress = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}
    assert all("to" not in rule for rule in policy["egress"])


def test_network_policy_options() -> None:
    docs = render(values=ALL_OPTIONS)
    values = yaml.safe_load(ALL_OPTIONS.read_text())["networkPolicy"]
    policy = one(docs, "NetworkPolicy")["spec"]
    (metrics,) = [r for r in policy["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert metrics["from"] == values["metricsFrom"]
    (api,) = [
        r
        for r in policy["egress"]
        if r.get("to") and "ipBlock" in r["to"][0] and r["to"][0]["ipBlock"]["cidr"] in values["kubeApiServer"]["cidrs"]
    ]
    assert [p["port"] for p in api["ports"]] == values["kubeApiServer"]["ports"]
    assert [t["ipBlock"]["cidr"] for t in api["to"]] == values["kubeApiServer"]["cidrs"]
    assert policy["egress"][-len(values["extraEgress"]) :] == values["extraEgress"]


def test_pod_options_are_passed_as_they_are() -> None:
    values = yaml.safe_load(ALL_OPTIONS.read_text())
    docs = render(values=ALL_OPTIONS)
    deploy = one(docs, "Deployment")
    pod = pod_of(docs)
    (container,) = pod["containers"]
    for key in ("tolerations", "affinity", "nodeSelector", "topologySpreadConstraints", "priorityClassName"):
        assert pod[key] == values[key], key
    assert values["extraVolumes"][0] in pod["volumes"] and len(pod["volumes"]) == 2
    assert values["extraVolumeMounts"][0] in container["volumeMounts"] and len(container["volumeMounts"]) == 2
    assert container["env"][-len(values["extraEnv"]) :] == values["extraEnv"]
    template = deploy["spec"]["template"]["metadata"]
    assert template["annotations"] == values["podAnnotations"]
    assert values["podLabels"].items() <= template["labels"].items()
    assert "--log-level=debug" in container["args"]
    assert pod["securityContext"] == values["podSecurityContext"]


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_log_level(level: str) -> None:
    (container,) = pod_of(render(f"logLevel={level}"))["containers"]
    assert [a for a in container["args"] if a.startswith("--log-level")] == [f"--log-level={level}"]


def test_allowed_hosts_render_into_the_environment() -> None:
    (container,) = pod_of(render("allowedHosts={*.inspera.no,fsws.usit.no:443,10.1.2.3}"))["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EXAMSYNC_ALLOWED_HOSTS"] == "*.inspera.no,fsws.usit.no:443,10.1.2.3"


def key_paths(node: Any, prefix: str = "") -> set[str]:
    """Every key of a values tree (lists are leaves)."""
    paths = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= key_paths(value, path + ".")
    return paths


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rpartition("/")[2]]
    return schema


def uncovered(values: Any, schema: dict[str, Any], root: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of values the schema does not define. Below an object the schema declares with its own
    properties every key must be defined; an object without them (a Kubernetes object passed to
    the pod as it is, a map of labels) is checked by its value schema only."""
    schema = resolve(schema, root)
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    missing = []
    for key, value in values.items():
        if key not in schema["properties"]:
            missing.append(f"{prefix}{key}")
        else:
            missing += uncovered(value, schema["properties"][key], root, f"{prefix}{key}.")
    return missing


def test_values_schema_covers_every_key() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    everything = yaml.safe_load(ALL_OPTIONS.read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert uncovered(values, schema, schema) == []
    assert uncovered(everything, schema, schema) == []
    assert set(schema["properties"]) - {"global"} == set(values)
    assert schema["additionalProperties"] is False
    # every object of the chart's own keys refuses unknown keys (a misspelt value fails)
    for key, node in schema["properties"].items():
        sub = resolve(node, schema)
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, key


def test_the_coverage_check_catches_an_undefined_key() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert uncovered({"networkPolicy": {"enabled": True, "egress": []}}, schema, schema) == ["networkPolicy.egress"]
    assert uncovered({"podLabels": {"anything": "x"}}, schema, schema) == []


def test_the_all_options_file_sets_every_key() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    everything = yaml.safe_load(ALL_OPTIONS.read_text())
    assert key_paths(values) <= key_paths(everything), sorted(key_paths(values) - key_paths(everything))
    for path in sorted(key_paths(everything)):
        if path.endswith(".enabled") or path == "crds.install":
            node = everything
            for part in path.split("."):
                node = node[part]
            assert node is True, path


def test_allowed_hosts_take_wildcards_ports_and_ip_literals() -> None:
    (container,) = one(render("allowedHosts={*.inspera.no,gw.intark.no:8443,127.0.0.1,[::1]:8080}"), "Deployment")[
        "spec"
    ]["template"]["spec"]["containers"]
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
    assert params["log_level"] == "info"
    if sets:
        assert params["namespaces"] == ("uio", "ntnu") and not params["clusterwide"]
        assert params["peering_name"] == "examsync" and not params["standalone"] and params["verbose"]
    else:
        assert params["clusterwide"] and params["namespaces"] == () and params["standalone"]


KUBERNETES_VALIDATE = REPO / ".venv/bin/kubernetes-validate"


@pytest.mark.skipif(not KUBERNETES_VALIDATE.exists(), reason="kubernetes-validate not installed")
@pytest.mark.parametrize("values", [None, ALL_OPTIONS], ids=["default", "all-options"])
def test_lint_and_validate_with_the_real_tools(values: Path | None, tmp_path: Path) -> None:
    """helm lint --strict, and every rendered object valid for Kubernetes 1.31 (strict: no unknown field)."""
    args = ["-f", str(values)] if values else []
    lint = subprocess.run(
        [HELM, "lint", "--strict", str(CHART), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = helm_template("--kube-version", "1.31.0", *args)
    assert rendered.returncode == 0, rendered.stderr
    manifest = tmp_path / "render.yaml"
    manifest.write_text(rendered.stdout, encoding="utf-8")
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "-k", "1.31.0", "--strict", "--quiet", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds_seen = {d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d}
    if values:
        assert {"NetworkPolicy", "PodDisruptionBudget", "KopfPeering", "PrometheusRule", "ServiceMonitor"} <= kinds_seen
