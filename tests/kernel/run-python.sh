#!/usr/bin/env bash
# Real Jupyter clients against this checkout's kernel: jupyter_kernel_test, jupyter_client probes and
# nbconvert. The kernelspec goes into a temporary prefix on JUPYTER_PATH, so nothing outside the
# temp folder is touched. Closing line: "N passed, M failed, K skipped"; non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3   # Debian's, which has the Jupyter packages (the default python3 may not)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f dist/kernel/src/cli.js ] || npx tsc -p tsconfig.json
node bin/moescope.js install --prefix "$tmp" >/dev/null
export JUPYTER_PATH="$tmp/share/jupyter"
export JUPYTER_RUNTIME_DIR="$tmp/runtime"
export MOESCOPE_TEST_TMP="$tmp"
exec "$PY" tests/kernel/run_all.py "$@"
