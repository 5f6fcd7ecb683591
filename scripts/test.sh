#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint, type-check and run every test, in independent parts run two at a time
# (scripts/test_parts.py): the fast suite (core, data, CLI, torch, Keras helpers, contract suite on torch); the
# contract suite on each Keras backend, each in a process of its own (Keras holds one backend per process), slow
# tests included; and the slow tests of the fast suite's files.
# Extra arguments go to every pytest call.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check tlcore backends plugins tests benchmarks scripts
.venv/bin/python -m mypy --strict tlcore backends plugins benchmarks scripts/test_parts.py
.venv/bin/python scripts/test_parts.py -- "$@"
