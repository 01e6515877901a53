#!/usr/bin/env bash
# Benchmarks usage-report processing: generates a signed report of SIZE_MB megabytes (default 100) with many
# per-day, per-cluster rows, uploads it to a fresh in-memory Azurite, then processes it in a separate process (as
# the blob trigger would) and prints the time and that process's peak memory. docs/usage-reports.md has results.
#
#   scripts/benchmark-usage.sh [SIZE_MB]
#
# Needs: .NET SDK 10, Node.js 20+ with npm (for the pinned Azurite).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in
  -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
esac
if [ $# -gt 1 ] || ! [[ ${1:-100} =~ ^[1-9][0-9]{0,4}$ ]]; then
  echo "usage: scripts/benchmark-usage.sh [SIZE_MB]   (SIZE_MB a whole number from 1 to 99999; see --help)" >&2
  exit 2
fi
size="${1:-100}"

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm
ensure_npm_tools

echo "==> Building the benchmark (Release)"
dotnet build tests/TelemetryFunctions.UsageBenchmarks -c Release -nologo -v quiet

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
blob_port=$(free_port); queue_port=$(free_port); table_port=$(free_port)

node_modules/.bin/azurite --silent --inMemoryPersistence --skipApiVersionCheck --disableProductStyleUrl \
  --blobHost 127.0.0.1 --blobPort "$blob_port" --queueHost 127.0.0.1 --queuePort "$queue_port" \
  --tableHost 127.0.0.1 --tablePort "$table_port" >/dev/null 2>&1 &
azurite_pid=$!
cleanup() { kill "$azurite_pid" 2>/dev/null || true; wait "$azurite_pid" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 150); do
  (echo >"/dev/tcp/127.0.0.1/$table_port") 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$blob_port") 2>/dev/null && break
  kill -0 "$azurite_pid" 2>/dev/null || { echo "error: Azurite did not start" >&2; exit 1; }
  sleep 0.2
done

# Azurite's well-known development account; not a secret.
account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
connection="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/$account;QueueEndpoint=http://127.0.0.1:$queue_port/$account;TableEndpoint=http://127.0.0.1:$table_port/$account;"
bench=tests/TelemetryFunctions.UsageBenchmarks/bin/Release/net10.0/TelemetryFunctions.UsageBenchmarks.dll

echo "==> Generating a ${size} MB report into Azurite"
dotnet "$bench" generate --size-mb "$size" --connection "$connection"

echo "==> Processing it in a fresh process"
dotnet "$bench" process --connection "$connection"
