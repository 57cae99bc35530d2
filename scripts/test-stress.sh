#!/usr/bin/env bash
# The suite on a busy machine: runs a command (default `npm test`; e.g. `bash .ci/run`) while Debian's
# stress-ng keeps every core busy (`--cpu N`, default 2, CI's core count), then stops stress-ng. A suite
# that passes here does not depend on an idle machine. Exit status: the command's.
#
#   npm run test:stress                       # npm test beside stress-ng --cpu 2
#   npm run test:stress -- bash .ci/run       # CI's own entry point
#   STRESS_CPUS=4 npm run test:stress
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v stress-ng >/dev/null 2>&1; then
  echo "test:stress: stress-ng is not installed (Debian: apt-get install stress-ng)" >&2
  exit 2
fi
cpus="${STRESS_CPUS:-2}"
stress-ng --cpu "$cpus" --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true; wait "$stress" 2>/dev/null || true' EXIT
echo "test:stress: stress-ng --cpu $cpus running beside: ${*:-npm test}"
started=$(date +%s)
status=0
if [ "$#" -gt 0 ]; then "$@" || status=$?; else npm test || status=$?; fi
echo "test:stress: finished in $(( $(date +%s) - started )) s with status $status, $cpus cores busy throughout"
exit "$status"
