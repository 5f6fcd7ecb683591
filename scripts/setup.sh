#!/usr/bin/env bash
# Set up tlcore on a fresh machine: a virtual environment in .venv with the
# torch backend, the offline datasets and weights, and the dev tools.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${TLCORE_EXTRAS:-torch,data,dev}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Fashion-MNIST comes from Debian's dataset-fashion-mnist when apt is usable;
# otherwise tlcore downloads it (with a hash check) on first use.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "setup: dataset-fashion-mnist not installed (fashion-mnist will be downloaded on first use)"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${EXTRAS}]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e plugins/tlcore-normfreeze
echo "setup: done ($(.venv/bin/python -c 'import tlcore; print("tlcore", tlcore.__version__)'))"
