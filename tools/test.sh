#!/usr/bin/env bash
# The project's test command (README: `npm test`). It installs what the tests need beyond npm
# packages (Debian's Jupyter clients and Chromium), makes sure the build is current, then runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages the real-client tests use (installed only when missing) ---------------------
need_pkgs=()
for p in python3-jupyter-client python3-jupyter-kernel-test python3-nbclient jupyter-nbconvert; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "[test] installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# --- build (no-op when current) ------------------------------------------------------------------
npm run --silent build

# --- vitest: engine, kernel, widgets -------------------------------------------------------------
npx vitest run

# --- real Jupyter clients against the kernel (jupyter_kernel_test, jupyter_client probes, nbconvert)
if [ -x tests/kernel/run-python.sh ]; then
  bash tests/kernel/run-python.sh
fi
