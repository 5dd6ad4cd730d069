#!/usr/bin/env bash
# The project's commands. Run from anywhere; everything happens in the repository.
#
#   bash scripts/playground.sh notebooks [NAME...]  set up, then execute the notebooks in place (the main job)
#   bash scripts/playground.sh test [NAME...]       set up, cargo fmt/clippy/test, the notebooks in quick mode
#   bash scripts/playground.sh setup                only install what is missing (idempotent)
#   bash scripts/playground.sh lab [ARGS...]        set up and start JupyterLab on the notebooks (ARGS go to it)
#   bash scripts/playground.sh bench                training-step benchmark against the PyTorch peer
#
# Needs: a Rust toolchain (rustup) and Python 3.9+ with venv; conda users can create
# environment.yml instead and run the same commands inside it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
EVCXR_VERSION=0.22.0
export PATH="$HOME/.cargo/bin:$PATH"

# Data: $PLAYGROUND_DATA, else the team's read-only copy beside the checkout, else data/ (downloaded).
if [ -z "${PLAYGROUND_DATA:-}" ] && [ -d "$ROOT/../shared/data/mnist" ]; then
  export PLAYGROUND_DATA="$ROOT/../shared/data"
fi

step() { printf '\n==> %s\n' "$*"; }

setup() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
  if ! command -v evcxr_jupyter >/dev/null; then
    step "installing the evcxr Jupyter kernel (cargo install, ~8 min on 2 cores)"
    cargo install evcxr_jupyter --version "$EVCXR_VERSION" --locked
  fi
  if [ -n "${CONDA_PREFIX:-}" ] && python3 -c "import nbclient, nbformat" 2>/dev/null; then
    PY="$(command -v python3)"   # inside the conda environment of environment.yml
  else
    [ -x "$VENV/bin/python" ] || { step "creating the Python environment .venv"; python3 -m venv "$VENV"; }
    PY="$VENV/bin/python"
    local pkgs="nbclient nbformat ipykernel"
    [ "${PLAYGROUND_NO_LAB:-}" = 1 ] || pkgs="$pkgs jupyterlab nbconvert"
    # shellcheck disable=SC2086
    if ! "$PY" -c "import nbclient, nbformat" 2>/dev/null || { [ "${PLAYGROUND_NO_LAB:-}" != 1 ] && [ ! -x "$VENV/bin/jupyter-lab" ]; }; then
      step "installing $pkgs into .venv"
      "$VENV/bin/pip" install --quiet $pkgs
    fi
  fi
  # evcxr's own registration, for a JupyterLab started without this script. (evcxr_jupyter
  # installs into $JUPYTER_PATH when it is set, so it is unset here.)
  if ! env -u JUPYTER_PATH "$PY" -c "import sys; from jupyter_client.kernelspec import find_kernel_specs; sys.exit('rust' not in find_kernel_specs())"; then
    step "registering the Rust kernel"
    env -u JUPYTER_PATH evcxr_jupyter --install
  fi
  # The notebooks' own `rust` kernel: evcxr in a build folder no other running kernel uses
  # (scripts/evcxr_kernel.py), found first through JUPYTER_PATH by `lab` and the notebook runner.
  # evcxr's kernel files (logos, version.txt) first, then a kernel.json that runs the script.
  local spec="$ROOT/notebooks/.jupyter/kernels/rust"
  if [ ! -f "$spec/version.txt" ]; then
    JUPYTER_PATH="$ROOT/notebooks/.jupyter" evcxr_jupyter --install >/dev/null
  fi
  "$PY" - "$spec/kernel.json" "$PY" "$ROOT/scripts/evcxr_kernel.py" <<'PYEOF'
import json, sys
path, python, script = sys.argv[1:]
spec = {"argv": [python, script, "--control_file", "{connection_file}"], "display_name": "Rust",
        "interrupt_mode": "message", "language": "rust"}
old = None
try:
    old = json.load(open(path))
except Exception:
    pass
if old != spec:
    json.dump(spec, open(path, "w"), indent=2)
PYEOF
}

export JUPYTER_PATH="$ROOT/notebooks/.jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"

notebook_list() {
  if [ $# -gt 0 ]; then for n in "$@"; do echo "notebooks/${n%.ipynb}.ipynb"; done
  else ls notebooks/*.ipynb; fi
}

cmd="${1:-help}"; shift || true
case "$cmd" in
  setup) setup ;;
  notebooks)
    setup
    step "executing notebooks at full settings (see each notebook's header for its expected time)"
    # shellcheck disable=SC2046
    "$PY" scripts/run_notebooks.py --inplace $(notebook_list "$@")
    "$PY" scripts/readme_tables.py
    ;;
  test)
    # `test NAME...` executes only those notebooks (all of them by default).
    export PLAYGROUND_NO_LAB=1
    setup
    step "cargo fmt --check and clippy (warnings are errors)"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    step "cargo test"
    cargo test --workspace
    out="$(mktemp -d)"
    step "checking the logic of this script (lab in a venv and in conda) and of the kernel's build folders"
    bash scripts/playground_selftest.sh
    step "checking that the notebook runner fails on a cell that panics, returns Err, shows a figure as text or prints a machine path"
    "$PY" scripts/run_notebooks.py --selftest "$out/selftest"
    step "executing the notebooks in quick mode (PLAYGROUND_QUICK=1)"
    # shellcheck disable=SC2046
    PLAYGROUND_QUICK=1 "$PY" scripts/run_notebooks.py --output-dir "$out" $(notebook_list "$@")
    ;;
  lab)
    setup
    # shellcheck disable=SC2086
    set -- "$PY" -m jupyter lab "$@" ${PLAYGROUND_LAB_ARGS:-}
    cd notebooks
    if [ -n "${PLAYGROUND_DRY_RUN:-}" ]; then echo "would run in $PWD: $*"; exit 0; fi
    exec "$@"
    ;;
  bench)
    cargo run --release -p support --bin bench
    ;;
  *)
    sed -n '2,11p' "$0"; exit 1 ;;
esac
