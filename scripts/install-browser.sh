#!/usr/bin/env bash
# Installs the browser the dashboard's browser test drives: Debian's chromium at /usr/bin/chromium.
# Does nothing when it is already there. Installing needs root (CI runs as root); otherwise it prints the command.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "note: /usr/bin/chromium is missing and this is not root, so the browser test will be skipped." >&2
  echo "      Install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 0
fi

echo "==> Installing chromium (Debian package) for the dashboard's browser test"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
