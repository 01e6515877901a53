#!/usr/bin/env bash
# Measures ingestion in one run against one storage: the storage's own ceiling (Azure.Data.Tables batch
# transactions), then the local host on Kestrel driven by concurrent POST /v1/batch clients; prints a report with
# PASS/FAIL per target and checks that every event sent is stored exactly once. docs/benchmarks.md explains it.
#
#   scripts/benchmark.sh                          100,000 events, 8 clients, batches of 100, its own Azurite
#   scripts/benchmark.sh --events 20000           a shorter run
#   scripts/benchmark.sh --storage "<conn>"       against another storage account (tables deleted at the end)
#   scripts/benchmark.sh --help                   every option
#
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned npm tools itself. Exit code 0 unless the
# stored-count check fails (1) or the command line is wrong (2); a missed performance target is only reported.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm

ensure_npm_tools

echo "==> Building (Release)"
dotnet build tests/TelemetryFunctions.Benchmarks -c Release -nologo -v quiet

echo "==> Running"
exec dotnet tests/TelemetryFunctions.Benchmarks/bin/Release/net10.0/TelemetryFunctions.Benchmarks.dll "$@"
