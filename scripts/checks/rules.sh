#!/usr/bin/env bash
# Alert rules: promtool checks the rule file the chart ships and runs the alert unit tests
# (tests/observability/rules_test.yaml: every alert firing and not firing).
set -euo pipefail
cd "$(dirname "$0")/../.."
RULES=charts/examsync/files/rules/examsync.rules.yaml
promtool check rules "$RULES"
promtool test rules tests/observability/rules_test.yaml
# The rendered PrometheusRule carries the same groups (the chart must not drift from the file).
HELM="$(command -v helm || echo .tools/bin/helm)"
if [ -x "$HELM" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$HELM" template examsync charts/examsync --set prometheusRule.enabled=true \
    --show-only templates/prometheusrule.yaml >"$tmp/rule.yaml"
  .venv/bin/python - "$tmp/rule.yaml" "$RULES" <<'PY'
import sys, yaml
rendered = yaml.safe_load(open(sys.argv[1]))["spec"]
plain = yaml.safe_load(open(sys.argv[2]))
assert rendered == plain, "rendered PrometheusRule differs from the rule file"
print("PrometheusRule matches", sys.argv[2])
PY
fi
