#!/usr/bin/env bash
# Builds Modelyard's container image from the repository's Containerfile with podman, on a
# machine that may reach no container registry at all.
#
# The base (the Containerfile's PYTHON_IMAGE, used by both stages) is, in this order:
#   1. MODELYARD_BASE_IMAGE when set (pulled if it is not already local);
#   2. the published python:3.11-slim-trixie when a registry answers;
#   3. otherwise one made here from Debian packages: mmdebstrap writes a minimal bookworm
#      (Python 3.11, venv, CA certificates, passwd) to a tarball that `podman import` turns into
#      localhost/modelyard-base:bookworm-py3.11 (kept, and reused by later builds).
#
# Environment:
#   MODELYARD_IMAGE            tag of the result (default localhost/modelyard:<version>, also :latest)
#   MODELYARD_BASE_IMAGE       base image to use instead of the search above
#   MODELYARD_DEBIAN_MIRROR    Debian mirror for the local base (default http://deb.debian.org/debian)
#   MODELYARD_CONTAINERS_CONF  engine settings (default deploy/container/containers.conf; empty: the
#                              engine's own)
#   MODELYARD_BUILD_CA_BUNDLE  CA bundle the build steps trust, bind-mounted read-only over the
#                              base's /etc/ssl/certs/ca-certificates.crt and never stored in the image
#                              (default: the host's bundle, which knows a TLS-inspecting proxy's CA;
#                              empty: none)
# Usage: deploy/container/build.sh [--rebuild-base]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

rebuild_base=0
for arg in "$@"; do
    case "$arg" in
    --rebuild-base) rebuild_base=1 ;;
    *) echo "usage: $0 [--rebuild-base]" >&2; exit 2 ;;
    esac
done

conf="${MODELYARD_CONTAINERS_CONF-$root/deploy/container/containers.conf}"
if [ -n "$conf" ]; then
    export CONTAINERS_CONF="$conf"
fi
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)"
image="${MODELYARD_IMAGE:-localhost/modelyard:$version}"
published="docker.io/library/python:3.11-slim-trixie"
local_base="localhost/modelyard-base:bookworm-py3.11"
mirror="${MODELYARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Everything heavy runs at a low priority: the machine is shared.
nice_cmd=(nice -n 10)

have_image() { podman image exists "$1"; }

make_local_base() {
    local tarball
    tarball="$(mktemp --suffix=.tar)"
    echo "build.sh: making $local_base from Debian packages ($mirror)"
    # minbase: Essential packages and apt; the build stage adds its compiler with apt-get.
    "${nice_cmd[@]}" mmdebstrap --quiet --variant=minbase --components=main \
        --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
        bookworm "$tarball" \
        "deb $mirror bookworm main" \
        "deb $mirror bookworm-updates main" \
        "deb ${mirror%/debian}/debian-security bookworm-security main"
    podman import --change 'CMD ["/bin/bash"]' \
        --message "Debian bookworm minbase + python3 (mmdebstrap)" \
        "$tarball" "$local_base" >/dev/null
    rm -f "$tarball"
}

pick_base() {
    if [ -n "${MODELYARD_BASE_IMAGE:-}" ]; then
        have_image "$MODELYARD_BASE_IMAGE" || podman pull "$MODELYARD_BASE_IMAGE" >&2
        echo "$MODELYARD_BASE_IMAGE"
    elif [ "$rebuild_base" -eq 0 ] && have_image "$local_base"; then
        echo "$local_base"
    elif [ "$rebuild_base" -eq 0 ] && { have_image "$published" \
            || timeout 120 podman pull --quiet "$published" >/dev/null 2>&1; }; then
        echo "$published"
    else
        make_local_base >&2
        echo "$local_base"
    fi
}

started=$(date +%s)
base="$(pick_base)"
echo "build.sh: base $base"

build_args=(
    --file Containerfile
    # Docker's format: OCI images have no HEALTHCHECK (buildah drops it with a warning).
    --format docker
    --build-arg "PYTHON_IMAGE=$base"
    --tag "$image"
    --label "org.opencontainers.image.version=$version"
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
)
ca="${MODELYARD_BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$ca" ]; then
    build_args+=(--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro")
fi
"${nice_cmd[@]}" podman build "${build_args[@]}" .
case "$image" in
*:"$version") podman tag "$image" "${image%:*}:latest" ;;
esac

elapsed=$(($(date +%s) - started))
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "build.sh: built $image from $base in ${elapsed}s, $((size / 1000000)) MB"
