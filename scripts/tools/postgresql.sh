#!/usr/bin/env bash
# Installs the PostgreSQL server binaries from Debian's `postgresql` package when missing: the audit
# store tests start a throwaway server of their own from /usr/lib/postgresql/<version>/bin.
# Args: $1 tools bin dir, $2 venv bin dir (both unused: the package installs under /usr/lib). Idempotent.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
source "$(dirname "$0")/apt.bash"
# No cluster of the package's own (and so no system server on port 5432): the tests make theirs.
apt_install postgresql-common
as_root mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/examsync.conf >/dev/null
apt_install postgresql
ls -d /usr/lib/postgresql/*/bin/initdb
