#!/usr/bin/env bash
# Installs the PostgreSQL server binaries from Debian's `postgresql` package when missing: the audit
# store tests start a throwaway server of their own from /usr/lib/postgresql/<version>/bin.
# Args: $1 tools bin dir, $2 venv bin dir (both unused: the package installs under /usr/lib). Idempotent.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# No cluster of the package's own (and so no system server on port 5432): the tests make theirs.
$SUDO apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/examsync.conf >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls -d /usr/lib/postgresql/*/bin/initdb
