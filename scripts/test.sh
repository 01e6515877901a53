#!/usr/bin/env bash
# Runs every test: unit tests, storage tests against a real Azurite (started by the tests from the pinned
# npm package, or the one in TELEMETRY_TEST_STORAGE), HTTP tests through the local host's pipeline and
# end-to-end tests that start the local host and drive it with the official Segment Node client, and the
# dashboard in headless Chromium.
#
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned npm tools itself, and Debian's chromium when
# run as root (scripts/install-browser.sh; otherwise the browser test is skipped and the script says how).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for tool in dotnet node npm; do
  command -v "$tool" >/dev/null || { echo "error: '$tool' is not installed (see README.md, Prerequisites)." >&2; exit 1; }
done

if [ ! -x node_modules/.bin/azurite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> Installing pinned tools (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The dashboard's browser test drives Debian's chromium; installed here when missing and root, else skipped.
"$root/scripts/install-browser.sh"

echo "==> Building"
dotnet build TelemetryFunctions.Buildable.slnf -c Release -nologo -v quiet

echo "==> Testing"
dotnet test tests/TelemetryFunctions.Tests -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory artifacts/test-results "$@"
