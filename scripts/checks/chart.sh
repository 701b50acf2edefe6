#!/usr/bin/env bash
# The chart, the CRD, the examples and the Dockerfile, checked with the real tools:
# helm lint --strict; helm template (default values, every option on, two replicas, the shard
# examples) | kubernetes-validate --strict; crds/ and the chart's CRD template equal `examsync crd`;
# the examples' Institutions against the CRD's schema and their ExternalSecrets against ESO's
# (check-jsonschema); hadolint on the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
venv=$PWD/.venv/bin
chart=charts/examsync
crd=crds/institutions.examsync.io.yaml
kube_version=1.31.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

clock() { date +%s%N; }
started=$(clock)
step() { printf '  %-80s' "$1"; step_started=$(clock); }
ok() { echo "ok ($(( ($(clock) - step_started) / 1000000 )) ms)"; }

step "CRD file and chart template match examsync crd"
template=$chart/templates/crds/institutions.examsync.io.yaml
"$venv/examsync" crd --output "$tmp/crd.yaml" --chart-template "$tmp/crd-template.yaml"
cmp -s "$tmp/crd.yaml" "$crd" || { echo "FAIL: $crd is stale; run make crd"; exit 1; }
cmp -s "$tmp/crd-template.yaml" "$template" || { echo "FAIL: $template is stale; run make crd"; exit 1; }
[ ! -e "$chart/crds" ] || { echo "FAIL: $chart/crds/ is back (helm never upgrades it)"; exit 1; }
ok

step "kubernetes-validate the CRDs ($kube_version)"
"$venv/kubernetes-validate" -k "$kube_version" --strict --quiet "$crd" "$chart/files/kopf-peering-crds.yaml" \
  >"$tmp/out" 2>&1 || { echo FAIL; cat "$tmp/out"; exit 1; }
ok

step "the chart renders the CRD of crds/ (spec identical, kept)"
helm template examsync "$chart" --show-only templates/crds/institutions.examsync.io.yaml >"$tmp/chart-crd.yaml"
"$venv/python" - "$tmp/chart-crd.yaml" "$crd" <<'PY'
import sys, yaml
rendered, committed = (yaml.safe_load(open(p)) for p in sys.argv[1:])
assert rendered["spec"] == committed["spec"], "the chart's CRD differs from crds/: run make crd"
assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
PY
ok

# name|helm arguments (one per line in the array; split on spaces)
values_sets=(
  "default values|"
  "all-options-values.yaml|-f $chart/ci/all-options-values.yaml"
  "two replicas, all namespaces|--set replicas=2 --set podDisruptionBudget.enabled=true --set networkPolicy.enabled=true"
  "audit store from a URL (its own Secret)|--set auditStore.url=postgresql://examsync:pw@pg.example:5432/examsync"
  "shard-norway.yaml|-f $chart/examples/shard-norway.yaml"
  "shard-denmark.yaml|-f $chart/examples/shard-denmark.yaml"
)
for entry in "${values_sets[@]}"; do
  label=${entry%%|*}
  read -r -a args <<<"${entry#*|}"
  step "helm lint --strict ($label)"
  helm lint --strict "$chart" "${args[@]}" >"$tmp/out" 2>&1 || { echo FAIL; cat "$tmp/out"; exit 1; }
  ok
  step "helm template | kubernetes-validate --strict ($label)"
  helm template examsync "$chart" --namespace examsync --kube-version "$kube_version" \
    "${args[@]}" >"$tmp/render.yaml"
  "$venv/kubernetes-validate" -k "$kube_version" --strict --quiet "$tmp/render.yaml" >"$tmp/out" 2>&1 \
    || { echo FAIL; cat "$tmp/out"; exit 1; }
  ok
done

step "values.schema.json rejects a bad value"
if helm template examsync "$chart" --set metrics.port=notaport >/dev/null 2>&1; then
  echo "FAIL: metrics.port=notaport was accepted"; exit 1
fi
ok

step "check-jsonschema: examples against the CRD's and ESO's schemas"
"$venv/python" - "$tmp" examples/*.yaml examples/external-secrets/*.yaml <<'PY'
import json, pathlib, sys
import yaml
from examsync.crd import validation_schema
out = pathlib.Path(sys.argv[1])
(out / "institution.schema.json").write_text(json.dumps(validation_schema()))
counts = {"Institution": 0, "ExternalSecret": 0}
for name in sys.argv[2:]:
    path = pathlib.Path(name)
    for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
        kind = doc.get("kind") if doc else None
        if kind in counts:
            (out / f"{kind}-{path.parent.name}-{path.stem}-{i}.json").write_text(json.dumps(doc))
            counts[kind] += 1
if not all(counts.values()):
    sys.exit(f"examples/ lacks a kind: {counts}")
PY
"$venv/check-jsonschema" --schemafile "$tmp/institution.schema.json" "$tmp"/Institution-*.json >"$tmp/out" 2>&1 \
  || { echo FAIL; cat "$tmp/out"; exit 1; }
"$venv/check-jsonschema" --schemafile tests/chart/schemas/externalsecret-v1.schema.json \
  "$tmp"/ExternalSecret-*.json >"$tmp/out" 2>&1 || { echo FAIL; cat "$tmp/out"; exit 1; }
ok

step "hadolint Dockerfile"
hadolint Dockerfile
ok
echo "  chart checks passed in $(( ($(clock) - started) / 1000000 )) ms"
