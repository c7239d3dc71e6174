#!/usr/bin/env bash
# Create .venv and install relaygate with the given extras (default: dev).
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh dev,local
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [[ ",$extras," == *",local,"* ]]; then
  bash scripts/install-local-model.sh
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
