#!/usr/bin/env bash
# Set up relaygate with the in-process local model and serve it on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "local"
exec .venv/bin/relaygate serve "$@"
