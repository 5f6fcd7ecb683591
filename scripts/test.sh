#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run lint and every test: the fast suite,
# then the slow tests, each backend's contract suite in its own process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check tlcore backends plugins tests benchmarks
.venv/bin/python -m mypy --strict tlcore
.venv/bin/python -m pytest -q "$@"
.venv/bin/python -m pytest -q -m slow "$@"
