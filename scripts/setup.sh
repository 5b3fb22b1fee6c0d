#!/usr/bin/env bash
# Create .venv and install FasterPose with its training, deployment and development extras.
# Works on a machine that has only Python 3.10+ (torch comes from PyPI or a local wheel cache).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[train,deploy,dev]"
.venv/bin/python -c "import fasterpose, torch; print('fasterpose', fasterpose.__version__, 'torch', torch.__version__)"
