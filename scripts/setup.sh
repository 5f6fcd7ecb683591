#!/usr/bin/env bash
# Set up tlcore on a fresh machine: a virtual environment in .venv with every
# backend (torch, Keras on JAX and TensorFlow), the offline datasets and
# weights, the ONNX/SavedModel exporters, the example plugins (plugins/) and the dev tools.
# Idempotent: a second run only checks what is there.
# TLCORE_EXTRAS chooses the extras (default: all,export,dev).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${TLCORE_EXTRAS:-all,export,dev}"

quiet_pip() {
    # pip's notes about this machine's local package mirrors are noise here.
    .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 | sed '/^WARNING: Location/d'
}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Fashion-MNIST comes from Debian's dataset-fashion-mnist when apt is usable;
# otherwise tlcore downloads it (with a hash check) on first use.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "setup: dataset-fashion-mnist not installed (fashion-mnist will be downloaded on first use)"
fi
quiet_pip -e ".[${EXTRAS}]"
quiet_pip -e plugins/tlcore-normfreeze
quiet_pip -e plugins/tlcore-resnet34
echo "setup: done ($(.venv/bin/python -c 'import tlcore; print("tlcore", tlcore.__version__)'))"
