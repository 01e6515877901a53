#!/usr/bin/env bash
# Load test of the local host, started as its own process against its own in-memory Azurite (docs/reliability.md):
#
#   scripts/load-test.sh ramp                      1, 2, 4 ... 64 concurrent clients, 20 s each: events/s, p50/p95/p99,
#                                                  429/503/error rates, and where the storage ceiling is reached
#   scripts/load-test.sh soak                      10 minutes at 1,000 events/s: host memory flat, every event stored
#   scripts/load-test.sh soak --duration 1h        longer
#   scripts/load-test.sh ramp --help               every option
#
# Both end by checking that every acknowledged event is stored exactly once. Exit code 0 when that check (and for the
# soak, flat memory) passes and no request got a 500; 1 otherwise; 2 for a bad command line.
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned npm tools itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm

case "${1:-}" in
  ramp|soak) ;;
  *) echo "usage: scripts/load-test.sh ramp|soak [options]   (scripts/load-test.sh ramp --help lists them)" >&2; exit 2 ;;
esac

ensure_npm_tools

echo "==> Building the local host and the load generator (Release)"
dotnet build tests/TelemetryFunctions.Benchmarks -c Release -nologo -v quiet

exec dotnet tests/TelemetryFunctions.Benchmarks/bin/Release/net10.0/TelemetryFunctions.Benchmarks.dll "$@"
