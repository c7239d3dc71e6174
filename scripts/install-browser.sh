#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's headless-browser test, when it is missing.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
sudo_=""
[ "$(id -u)" -ne 0 ] && sudo_="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_ apt-get install -y -q chromium >/dev/null \
  || { $sudo_ apt-get update -q >/dev/null && $sudo_ apt-get install -y -q chromium >/dev/null; } \
  || echo "warning: could not install chromium; the dashboard browser test will skip"
exit 0
