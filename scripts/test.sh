#!/usr/bin/env bash
# Runs every test: unit tests, storage tests against a real Azurite (started by the tests from the pinned
# npm package, or the one in TELEMETRY_TEST_STORAGE), HTTP tests through the local host's pipeline and
# end-to-end tests that start the local host and drive it with the official Segment Node client, and the
# dashboard in headless Chromium; then, on a full run (no arguments), the bounded load ramp and soak
# (scripts/load-test.sh: no 500s, every acknowledged event stored exactly once, host memory flat).
#
#   scripts/test.sh                                   everything
#   scripts/test.sh --filter FullyQualifiedName~Ingest   only the selected tests (arguments go to dotnet test)
#   scripts/test.sh --help                            this text
#
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned npm tools itself, and Debian's chromium when
# run as root (scripts/install-browser.sh; otherwise the browser test is skipped and the script says how).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

case "${1:-}" in
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
esac

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm

ensure_npm_tools

# The dashboard's browser test drives Debian's chromium; installed here when missing and root, else skipped.
"$root/scripts/install-browser.sh"

echo "==> Building"
dotnet build TelemetryFunctions.Buildable.slnf -c Release -nologo -v quiet

echo "==> Testing"
dotnet test tests/TelemetryFunctions.Tests -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory artifacts/test-results "$@"

# The bounded versions of the load ramp and the soak; docs/reliability.md has the full-length ones.
if [ "$#" -eq 0 ]; then
  echo "==> Load ramp, bounded (scripts/load-test.sh ramp --steps 1,4,16 --step-seconds 5)"
  scripts/load-test.sh ramp --steps 1,4,16 --step-seconds 5
  echo "==> Soak, bounded (scripts/load-test.sh soak --duration 90s --rate 500)"
  scripts/load-test.sh soak --duration 90s --rate 500 --sample-seconds 3
fi
