#!/usr/bin/env bash
# Alert rules: promtool checks the rule file the chart ships and the rule files the chart renders
# for three releases (the default, a second one side by side, one with every rule option), and runs
# the alert unit tests (tests/chart/rules/rules_*test.yaml) against the rendered files.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
RULES=charts/examsync/files/rules/examsync.rules.yaml
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
promtool check rules "$RULES"
.venv/bin/python -m tests.support.render_rules "$tmp" >/dev/null
promtool check rules "$tmp"/*.rules.yaml
promtool test rules "$tmp"/rules_*test.yaml
# The default release renders the rule file as it is (one source, no drift).
helm template examsync charts/examsync --set prometheusRule.enabled=true \
  --show-only templates/prometheusrule.yaml >"$tmp/rule.yaml"
.venv/bin/python - "$tmp/rule.yaml" "$RULES" <<'PY'
import sys, yaml
rendered = yaml.safe_load(open(sys.argv[1]))["spec"]
plain = yaml.safe_load(open(sys.argv[2]))
assert rendered == plain, "rendered PrometheusRule differs from the rule file"
print("PrometheusRule of the release examsync matches", sys.argv[2])
PY
