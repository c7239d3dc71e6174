#!/usr/bin/env bash
# Install the three real coding CLIs used by tests/realcli into a local prefix.
# Registry only: every package comes from the npm registry through npm itself.
#   scripts/install-clis.sh [PREFIX]      (default: .tools/ at the repo root)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:-$root/.tools}"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    @anthropic-ai/claude-code @openai/codex @google/gemini-cli
for bin in claude codex gemini; do
    if [ -x "$prefix/node_modules/.bin/$bin" ]; then
        echo "installed: $prefix/node_modules/.bin/$bin"
    else
        echo "missing after install: $bin" >&2
        exit 1
    fi
done
