#!/usr/bin/env bash
# tests/browser drives Debian's headless Chromium through Debian's chromedriver
# (selenium is handed /usr/bin/chromedriver, so nothing downloads a browser or
# a driver). Installs the two packages when they are missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/browser needs Debian's chromium and chromium-driver; install them as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
