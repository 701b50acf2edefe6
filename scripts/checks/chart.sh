#!/usr/bin/env bash
# The chart, the CRD, the examples and the Dockerfile, checked with the real tools:
# helm lint --strict; helm template (default and non-default values) | kubernetes-validate;
# the committed CRD files equal `examsync crd`; the examples against the CRD's schema with
# check-jsonschema; hadolint on the Dockerfile.
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
step() { printf '  %-66s' "$1"; step_started=$(clock); }
ok() { echo "ok ($(( ($(clock) - step_started) / 1000000 )) ms)"; }

step "CRD files match examsync crd"
"$venv/examsync" crd --output "$tmp/crd.yaml"
cmp -s "$tmp/crd.yaml" "$crd" || { echo "FAIL: $crd is stale; run make crd"; exit 1; }
cmp -s "$crd" "$chart/crds/institutions.examsync.io.yaml" || { echo "FAIL: chart copy differs; run make crd"; exit 1; }
ok

step "kubernetes-validate the CRD ($kube_version)"
"$venv/kubernetes-validate" -k "$kube_version" --strict --quiet "$crd" >"$tmp/out" 2>&1 || { echo FAIL; cat "$tmp/out"; exit 1; }
ok

values_sets=("" "$chart/ci/non-default-values.yaml" "$chart/examples/shard-norway.yaml" "$chart/examples/shard-denmark.yaml")
for values in "${values_sets[@]}"; do
  label=${values:-default values}
  args=()
  [ -n "$values" ] && args=(-f "$values")
  step "helm lint --strict (${label##*/})"
  helm lint --strict "$chart" "${args[@]}" >"$tmp/out" 2>&1 || { echo FAIL; cat "$tmp/out"; exit 1; }
  ok
  step "helm template | kubernetes-validate (${label##*/})"
  helm template examsync "$chart" --namespace examsync --kube-version "$kube_version" --include-crds \
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

step "check-jsonschema: examples against the CRD schema"
"$venv/python" - "$tmp" examples/*.yaml <<'PY'
import json, pathlib, sys
import yaml
from examsync.crd import validation_schema
out = pathlib.Path(sys.argv[1])
(out / "institution.schema.json").write_text(json.dumps(validation_schema()))
n = 0
for name in sys.argv[2:]:
    for i, doc in enumerate(yaml.safe_load_all(pathlib.Path(name).read_text())):
        if doc and doc.get("kind") == "Institution":
            (out / f"inst-{pathlib.Path(name).stem}-{i}.json").write_text(json.dumps(doc))
            n += 1
if n == 0:
    sys.exit("no Institution found under examples/")
PY
"$venv/check-jsonschema" --schemafile "$tmp/institution.schema.json" "$tmp"/inst-*.json >"$tmp/out" 2>&1 \
  || { echo FAIL; cat "$tmp/out"; exit 1; }
ok

step "hadolint Dockerfile"
hadolint Dockerfile
ok
echo "  chart checks passed in $(( ($(clock) - started) / 1000000 )) ms"
