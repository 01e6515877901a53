#!/usr/bin/env bash
# Shared by the scripts in scripts/: checks the tools a script needs and installs the pinned npm tools
# (Azurite, the Segment Node client) from package-lock.json when they are missing or older than the lock file.
# Source it after changing to the repository root.

# require_tools TOOL...: stops with a clear message when one is not installed.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' is not installed (see README.md, Prerequisites)." >&2; exit 1; }
  done
}

# ensure_npm_tools: npm ci when node_modules is missing or older than package-lock.json.
ensure_npm_tools() {
  if [ ! -x node_modules/.bin/azurite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> Installing pinned tools (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
