#!/usr/bin/env bash
# Build the image from the Containerfile and smoke-test it: it starts as a non-root user with a
# read-only root filesystem, answers /healthz and /readyz, serves the admin API with the key
# from its environment, and migrates a fresh SQLite store in its data directory.
#
#   tools/container-smoke.sh [IMAGE]          # builds IMAGE (default localhost/modelyard:smoke)
#
# ENGINE (default podman) and ENGINE_FLAGS / BUILD_FLAGS adapt it to the machine; on the
# project's development machines (nested, cgroups v1) podman runs with
#   ENGINE_FLAGS="--runtime runc --cgroup-manager=cgroupfs" and CONTAINERS_CONF pointing at a
#   file with "[containers] default_ulimits = []"; with no registry reachable, the base comes
#   from Debian's packages: BUILD_FLAGS="--build-arg PYTHON_IMAGE=localhost/debian-python:bookworm"
#   (mmdebstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates
#   bookworm rootfs.tar && podman import rootfs.tar localhost/debian-python:bookworm).
set -euo pipefail
IMAGE="${1:-localhost/modelyard:smoke}"
ENGINE="${ENGINE:-podman}"
read -r -a ENGINE_ARGS <<< "${ENGINE_FLAGS:-}"
read -r -a BUILD_ARGS <<< "${BUILD_FLAGS:-}"
PORT="${PORT:-18700}"
KEY="smoke-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cd "$(dirname "$0")/.."

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  "$ENGINE" "${ENGINE_ARGS[@]}" build "${BUILD_ARGS[@]}" -t "$IMAGE" -f Containerfile .
fi

config="$(mktemp -d)"
trap 'rm -rf "$config"; "$ENGINE" "${ENGINE_ARGS[@]}" rm -f modelyard-smoke >/dev/null 2>&1 || true' EXIT
cat > "$config/modelyard.yaml" <<'YAML'
local: {enabled: false}
providers:
  upstream: {type: openai_compatible, base_url: "http://127.0.0.1:9/v1", api_key: unused}
deployments:
  chat: {targets: [{provider: upstream, model: any}]}
YAML
chmod -R a+rX "$config"

"$ENGINE" "${ENGINE_ARGS[@]}" run -d --name modelyard-smoke --network=host --read-only \
  --tmpfs /tmp --tmpfs /var/lib/modelyard:uid=10001,gid=10001 \
  -v "$config:/etc/modelyard:ro" -e MODELYARD_ADMIN_KEY="$KEY" \
  "$IMAGE" serve --config /etc/modelyard/modelyard.yaml --host 127.0.0.1 --port "$PORT"

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/healthz"; echo
curl -fsS "http://127.0.0.1:$PORT/readyz"; echo
me="$(curl -fsS -H "authorization: Bearer $KEY" "http://127.0.0.1:$PORT/admin/v1/me")"
echo "$me"
grep -q '"role":"operator"' <<< "$me"
uid="$("$ENGINE" "${ENGINE_ARGS[@]}" exec modelyard-smoke id -u)"
[[ "$uid" == 10001 ]] || { echo "runs as uid $uid, not 10001" >&2; exit 1; }
"$ENGINE" "${ENGINE_ARGS[@]}" exec modelyard-smoke sh -c 'test -f /var/lib/modelyard/modelyard.db'
if "$ENGINE" "${ENGINE_ARGS[@]}" exec modelyard-smoke sh -c 'touch /opt/modelyard/x' 2>/dev/null; then
  echo "the root filesystem is writable" >&2; exit 1
fi
echo "smoke test passed: $IMAGE"
