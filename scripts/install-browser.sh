#!/usr/bin/env bash
# Installs the browser the dashboard's browser test drives: Debian's chromium at /usr/bin/chromium, from the
# distribution's own package (no browser download). Does nothing when it is already there. Installing needs root
# and apt-get (CI has both); otherwise it says how, and the browser test is skipped.
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
  *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: /usr/bin/chromium is missing, so the dashboard's browser test will be skipped." >&2
  echo "      On Debian or Ubuntu install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 0
fi

echo "==> Installing chromium (Debian package) for the dashboard's browser test"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "Installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)."
