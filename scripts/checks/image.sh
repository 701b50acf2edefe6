#!/usr/bin/env bash
# Build the operator image from the Dockerfile with buildah and run `examsync` inside it.
# No registry is reachable, so the base is made here: debootstrap (minbase + python3) once, its
# packages checked against Debian's archive keyring (apt verifies the same way),
# kept as a tarball under .tools/images/ and imported into buildah's store; later runs reuse the
# stored base image and buildah's layer cache (dependencies are one layer, the code another).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=$root/.tools/images
base_tar=$cache/debian-bookworm-python3.tar
base_ref=localhost/examsync-base:bookworm
image=localhost/examsync:check
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"

missing=()
for tool in buildah podman debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -s "$keyring" ] || missing+=(debian-archive-keyring)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

clock() { date +%s%N; }
since() { local ms=$(( ($(clock) - $1) / 1000000 )); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

started=$(clock)
t=$started
if ! buildah inspect --type image "$base_ref" >/dev/null 2>&1; then
  if [ ! -s "$base_tar" ]; then
    dir=$(mktemp -d)
    debootstrap --keyring="$keyring" --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
      bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log"; exit 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$dir"
  fi
  podman import --quiet "$base_tar" "$base_ref" >/dev/null
fi
echo "  base image $base_ref ready in $(since "$t")"

t=$(clock)
buildah bud --quiet --layers --isolation chroot \
  --build-arg BASE_IMAGE="$base_ref" \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -f Dockerfile -t "$image" . >/dev/null
echo "  built $image in $(since "$t")"

t=$(clock)
ctr=$(buildah from --quiet "$image")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
user=$(buildah inspect --type container --format '{{.OCIv1.Config.User}}' "$ctr")
[ "${user%%:*}" = 10001 ] || { echo "FAIL: image user is '$user', want 10001"; exit 1; }
version=$(buildah run --isolation chroot "$ctr" -- examsync --version)
want=$(.venv/bin/examsync --version)
[ "$version" = "$want" ] || { echo "FAIL: examsync --version in the image says '$version', want '$want'"; exit 1; }
uid=$(buildah run --isolation chroot "$ctr" -- python3 -c 'import os; print(os.getuid())')
[ "$uid" = 10001 ] || { echo "FAIL: runs as uid $uid"; exit 1; }
# The operator's whole import graph (kopf, kubernetes client, pipelines) is in the image.
buildah run --isolation chroot "$ctr" -- python3 -c 'import kopf, examsync.kube.main, examsync.pipelines.runner'
# The sandbox is a distribution of its own: no examsync_sandbox, and no simulator, seed or sandbox
# module inside examsync.
buildah run --isolation chroot "$ctr" -- python3 -c '
import importlib.util, pathlib, sys, examsync
if importlib.util.find_spec("examsync_sandbox") is not None:
    sys.exit("FAIL: examsync_sandbox is in the image")
root = pathlib.Path(examsync.__file__).parent
found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
               if any(w in p.name for w in ("simulator", "sim_world", "seed")) or "sandbox" in p.parts)
if found:
    sys.exit(f"FAIL: sandbox modules in the image: {found}")
'
# Its Python packages are exactly the locked runtime ones (requirements/runtime.txt).
buildah run --isolation chroot "$ctr" -- python3 -m pip freeze --no-cache-dir --exclude examsync >"$cache/freeze-from-image.txt"
.venv/bin/python - "$cache/freeze-from-image.txt" requirements/runtime.txt <<'PY' || exit 1
import re, sys
from packaging.utils import canonicalize_name
def pins(text):
    return {canonicalize_name(n): v for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}
image, lock = (pins(open(p, encoding="utf-8").read()) for p in sys.argv[1:3])
extra = {n: v for n, v in image.items() if lock.get(n) != v and n not in ("pip", "setuptools", "wheel")}
if extra or set(lock) - set(image):
    sys.exit(f"FAIL: the image's packages differ from requirements/runtime.txt: {extra or sorted(set(lock) - set(image))}")
PY
buildah run --isolation chroot "$ctr" -- examsync crd >"$cache/crd-from-image.yaml"
cmp -s "$cache/crd-from-image.yaml" crds/institutions.examsync.io.yaml \
  || { echo "FAIL: examsync crd in the image differs from crds/"; exit 1; }
echo "  smoke test ($version, uid $uid, crd) in $(since "$t")"
echo "  image checks passed in $(since "$started")"
