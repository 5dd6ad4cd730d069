#!/usr/bin/env bash
# The newcomer's path, as CI checks it (.ci/run): a clone of this commit in a folder with no
# `../shared` beside it, the datasets copied into its `data/` as the README says, and the test
# command run there with no PLAYGROUND_* variable set. It exercises the data path (the tests and
# a notebook find the data by the library's rule) and the commands, not a second cold build: the
# cargo build folder is shared, and one notebook (MNIST MLP) is executed.
#
#   bash scripts/newcomer_check.sh DATA_SOURCE     (a folder with mnist/, cifar-10-batches-bin/, imagenet/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${1:?usage: newcomer_check.sh DATA_SOURCE}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone --quiet "$ROOT" "$tmp/repo"
[ ! -e "$tmp/shared" ] || { echo "newcomer check: $tmp/shared exists, the check would not be one" >&2; exit 1; }
mkdir -p "$tmp/repo/data"
for d in mnist cifar-10-batches-bin imagenet; do
  cp -r "$src/$d" "$tmp/repo/data/"
done
echo "newcomer check: clone in $tmp/repo, data copied from $src into its data/"
cd "$tmp/repo"
unset PLAYGROUND_DATA PLAYGROUND_WEIGHTS PLAYGROUND_CACHE PLAYGROUND_RUNS PLAYGROUND_QUICK
# Reuse the installed tools and the compiled dependencies: cargo's build folder is shared, and the
# notebook kernel's build folder starts as a copy of this checkout's (only `support` rebuilds).
# The clone keeps its own venv and kernel registration, made by the test command as for a user.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ -d "$ROOT/notebooks/.evcxr_build/0/target" ]; then
  mkdir -p notebooks/.evcxr_build
  cp -a "$ROOT/notebooks/.evcxr_build/0" notebooks/.evcxr_build/0   # -a: cargo compares mtimes
  rm -f notebooks/.evcxr_build/0/.kernel.lock
fi
bash scripts/playground.sh test MNIST_classification_MLP
echo "newcomer check: passed"
