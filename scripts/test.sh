#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint, type-check and run every test:
#   1. the fast suite (core, data, CLI, torch, Keras helpers, contract suite on torch);
#   2. the contract suite on each Keras backend, each in a process of its own
#      (Keras holds one backend per process), slow tests included;
#   3. the slow tests of step 1.
# Extra arguments go to every pytest call.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check tlcore backends plugins tests benchmarks
.venv/bin/python -m mypy --strict tlcore benchmarks/tlcore_bench
.venv/bin/python -m pytest -q "$@"
for backend in keras-jax keras-tensorflow keras-torch; do
    echo "== contract suite on $backend"
    .venv/bin/python -m pytest -q tests/contract --backend "$backend" -m "slow or not slow" "$@"
done
echo "== slow tests"
.venv/bin/python -m pytest -q -m slow "$@"
