#!/usr/bin/env bash
# The project's test command (README: `npm test`). It installs what the tests need beyond npm
# packages (Debian's Jupyter clients and Chromium), makes sure the build is current, then runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages the real-client tests use (installed only when missing) ---------------------
need_pkgs=()
for p in python3-jupyter-client python3-jupyter-kernel-test python3-nbclient jupyter-nbconvert jupyter-notebook chromium; do
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

results=$(mktemp -d)
status=0

# --- issue 9: the CUDA backend must keep compiling (no GPU needed) -------------------------------
# A clean compile takes ~6.5 min on the shared 2-core dev machine (over the 3 min a vitest file may
# take), so it runs here, incrementally (seconds when nothing changed), only where nvcc exists.
# Its result counts as one test. MOESCOPE_SKIP_CUDA_BUILD=1 skips it.
c_pass=0; c_fail=0
if [ "${MOESCOPE_SKIP_CUDA_BUILD:-0}" != "1" ] && { command -v nvcc >/dev/null 2>&1 || ls /usr/local/cuda*/bin/nvcc >/dev/null 2>&1; }; then
  if npm run --silent build:cuda >/tmp/moescope-build-cuda.log 2>&1; then c_pass=1; echo "build:cuda: ok"
  else c_fail=1; status=1; echo "build:cuda: FAILED (tail of /tmp/moescope-build-cuda.log):"; tail -30 /tmp/moescope-build-cuda.log; fi
fi
# --- end issue 9 ---------------------------------------------------------------------------------

# --- vitest: engine, kernel, widgets -------------------------------------------------------------
npx vitest run --reporter=default --reporter=json --outputFile.json="$results/vitest.json" || status=1
read -r v_pass v_fail < <(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites || 0));' "$results/vitest.json" 2>/dev/null || echo "0 1")
echo "vitest: ${v_pass} passed, ${v_fail} failed"

# --- real Jupyter clients against the kernel (jupyter_kernel_test, jupyter_client probes, nbconvert)
p_pass=0; p_fail=0
if [ -f tests/kernel/run-python.sh ]; then
  bash tests/kernel/run-python.sh | tee "$results/python.log" || status=1
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/python.log" | tail -1 || true)
  if [ -n "$line" ]; then p_pass=${line%% passed*}; p_fail=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/'); else p_fail=1; fi
fi

total_fail=$((v_fail + p_fail + c_fail))
[ "$status" -ne 0 ] && [ "$total_fail" -eq 0 ] && total_fail=1
echo "$((v_pass + p_pass + c_pass)) passed, ${total_fail} failed"
exit $(( total_fail > 0 ? 1 : 0 ))
