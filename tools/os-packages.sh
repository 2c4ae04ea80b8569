#!/usr/bin/env bash
# The Debian packages the whole test suite drives, installed when missing (as root, or with
# sudo): Prometheus's promtool (the alert rules and dashboard expressions are checked by it),
# nginx (the replicas' load balancer and the benchmark's upstream), Chromium (the portal's and
# the reports' browser tests). `make test` runs this first and then tells the tests, through
# MODELYARD_TESTS_OS_PACKAGES, that a missing tool is a failure, not a reason to skip.
set -euo pipefail
want=()
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
[ -x /usr/bin/chromium ] || want+=(chromium)
[ "${#want[@]}" -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian packages: ${want[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
