#!/usr/bin/env bash
# Checks the logic of scripts/playground.sh and scripts/evcxr_kernel.py without starting
# JupyterLab (run by the test command after setup):
# - `lab` in the venv and in a conda environment (CONDA_PREFIX set, its python3 first on PATH)
#   runs `<that python> -m jupyter lab` in notebooks/ with the arguments given after `lab` and
#   those of PLAYGROUND_LAB_ARGS;
# - the notebooks' kernel spec points at evcxr_kernel.py, and a second kernel started while a
#   first one holds build folder 0 gets folder 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fail() { echo "playground self-test: $*" >&2; exit 1; }
expect() { [ "$1" = "$2" ] || fail "expected \"$2\", got \"$1\""; }
lab() { PLAYGROUND_NO_LAB=1 PLAYGROUND_DRY_RUN=1 bash "$ROOT/scripts/playground.sh" lab "$@" | tail -n 1; }

venv_py="$ROOT/.venv/bin/python"
if [ -z "${CONDA_PREFIX:-}" ]; then
  expect "$(lab --allow-root --port 8899)" \
    "would run in $ROOT/notebooks: $venv_py -m jupyter lab --allow-root --port 8899"
  # A conda environment: the python3 found first on PATH, wherever it lives.
  fake="$(mktemp -d)"
  trap 'rm -rf "$fake"' EXIT
  mkdir -p "$fake/bin"
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$venv_py" > "$fake/bin/python3"
  chmod +x "$fake/bin/python3"
  out="$(CONDA_PREFIX="$fake" PATH="$fake/bin:$PATH" PLAYGROUND_LAB_ARGS="--no-browser" lab --allow-root)"
  expect "$out" "would run in $ROOT/notebooks: $fake/bin/python3 -m jupyter lab --allow-root --no-browser"
  lab >/dev/null   # registers the kernel spec with the venv's python again
fi

spec="$ROOT/notebooks/.jupyter/kernels/rust/kernel.json"
python3 - "$spec" "$ROOT/scripts/evcxr_kernel.py" <<'PYEOF' || fail "kernel spec or build-folder slots"
import json, subprocess, sys, importlib.util
spec_path, script = sys.argv[1:]
spec = json.load(open(spec_path))
assert spec["argv"][1] == script and spec["argv"][2:] == ["--control_file", "{connection_file}"], spec
# While this process holds a slot, a kernel started now must take the next one.
mod_spec = importlib.util.spec_from_file_location("evcxr_kernel", script)
kernel = importlib.util.module_from_spec(mod_spec)
mod_spec.loader.exec_module(kernel)
held, lock = kernel.take_slot()
other = subprocess.run([sys.executable, script, "--which-slot"], capture_output=True, text=True, check=True)
other = other.stdout.strip()
assert other != str(held) and other.startswith(str(kernel.BUILD)), (held, other)
print(f"kernel slots: {held.name} held, the next kernel gets {other.rsplit('/', 1)[-1]}")
PYEOF
# The kernel runs evcxr with its build folder and without JUPYTER_PATH (with it, evcxr_jupyter
# rewrites notebooks/.jupyter/kernels/rust/kernel.json at every start: the spec would be lost).
fakebin="$(mktemp -d)"
printf '#!/bin/sh\necho "$EVCXR_TMPDIR ${JUPYTER_PATH-unset} $*"\n' > "$fakebin/evcxr_jupyter"
chmod +x "$fakebin/evcxr_jupyter"
out="$(PATH="$fakebin:$PATH" JUPYTER_PATH=/elsewhere python3 "$ROOT/scripts/evcxr_kernel.py" --control_file c.json 2>/dev/null)"
rm -rf "$fakebin"
case "$out" in
  "$ROOT/notebooks/.evcxr_build/"[0-9]" unset --control_file c.json") ;;
  *) fail "the kernel wrapper ran evcxr as \"$out\"" ;;
esac
echo "playground self-test: passed"
