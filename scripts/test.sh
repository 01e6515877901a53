#!/usr/bin/env bash
# Runs every test: unit tests, storage tests against a real Azurite (started by the tests from the pinned
# npm package, or the one in TELEMETRY_TEST_STORAGE), HTTP tests through the local host's pipeline and
# end-to-end tests that start the local host and drive it with the official Segment Node client.
#
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned npm tools itself.
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

echo "==> Building"
dotnet build TelemetryFunctions.Buildable.slnf -c Release -nologo -v quiet

echo "==> Testing"
dotnet test tests/TelemetryFunctions.Tests -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory artifacts/test-results "$@"
