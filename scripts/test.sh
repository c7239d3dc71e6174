#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "dev,local"
bash scripts/services.sh
bash scripts/install-browser.sh
if [ -f scripts/install-clis.sh ]; then bash scripts/install-clis.sh || echo "warning: CLI install failed; real-CLI tests will skip"; fi
export PATH="$PWD/.tools/bin:$PWD/.tools/node_modules/.bin:$PATH"
.venv/bin/ruff check src tests
.venv/bin/python -m mypy
.venv/bin/python -m pytest -q "$@"
