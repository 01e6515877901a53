#!/usr/bin/env bash
# Measures how the timer jobs scale against one storage (its own in-memory Azurite by default):
#   - the inactivity sweep in fleets of N instances of which the same 1,000 went silent,
#   - the daily rollup of a day with N active users (time, peak managed memory, storage requests),
#   - MAU as a merge of 30 day digests of N users each.
# docs/benchmarks.md has the results and the machine they ran on.
#
#   scripts/benchmark-timers.sh                                 N = 10,000, 100,000 and 1,000,000 (about 15 minutes)
#   scripts/benchmark-timers.sh --sizes 10000,100000            a shorter run
#   scripts/benchmark-timers.sh --storage "<connection string>" against another storage account
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm

ensure_npm_tools

echo "==> Building (Release)"
dotnet build tests/TelemetryFunctions.TimerBenchmarks -c Release -nologo -v quiet

echo "==> Running"
dotnet run -c Release --no-build --project tests/TelemetryFunctions.TimerBenchmarks -- "$@"
