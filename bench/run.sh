#!/usr/bin/env bash
# One command for the benchmark: installs nginx and wrk from Debian's packages when missing,
# then runs the driver (all processes on 127.0.0.1, stopped at the end).
#   bench/run.sh            full run (10 s per scenario, 1,000 open streams, 1,000,000-request soak)
#   bench/run.sh --quick    short run (3 s per scenario, 30,000-request soak)
#   bench/run.sh --help     every option
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  sudo_="" ; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get install -y nginx-light wrk || { $sudo_ apt-get update && $sudo_ apt-get install -y nginx-light wrk; }
fi
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"
  else py=python3; fi
fi
cd "$root"
exec env PYTHONPATH="$root/src:$root${PYTHONPATH:+:$PYTHONPATH}" "$py" -m bench.driver "$@"
