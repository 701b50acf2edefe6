#!/usr/bin/env bash
# Installs Prometheus (promtool and the server) from Debian's `prometheus` package when missing.
# Args: $1 tools bin dir, $2 venv bin dir (unused: the package installs into /usr/bin). Idempotent.
set -euo pipefail
TOOLS="${1:-.tools/bin}"
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
source "$(dirname "$0")/apt.bash"
# --no-install-recommends: the server and promtool only, no node exporter or web assets
apt_install prometheus
# The package starts a system service where an init system runs; the tests start their own server.
mkdir -p "$TOOLS"
for bin in promtool prometheus; do
  if [ ! -e "$TOOLS/$bin" ] && [ -x "/usr/bin/$bin" ]; then
    ln -s "/usr/bin/$bin" "$TOOLS/$bin"
  fi
done
promtool --version | head -1
