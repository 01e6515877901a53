#!/usr/bin/env bash
# Runs TelemetryFunctions on this machine: the Azurite storage emulator and the local host
# (same routes and code as the Azure Functions app) on http://127.0.0.1:7071.
#
#   scripts/run-local.sh               data kept in .local-data/azurite between runs
#   scripts/run-local.sh --in-memory   nothing kept after Ctrl-C
#   scripts/run-local.sh --port 8080   another port for the local host
#
# An Azurite already listening on 127.0.0.1:10000-10002 is used as it is (its own persistence applies, not
# --in-memory); anything else on those ports stops the script. Ctrl-C or closing the terminal stops both.
# Needs: .NET SDK 10, Node.js 20+ with npm. Installs the pinned Azurite from package-lock.json.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

in_memory=0
port=7071
while [ $# -gt 0 ]; do
  case "$1" in
    --in-memory) in_memory=1 ;;
    --port) port="${2:?--port needs a number}"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/lib/prerequisites.sh
source "$root/scripts/lib/prerequisites.sh"
require_tools dotnet node npm curl

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open "$port"; then
  echo "error: port $port is already in use; stop what runs there or use --port." >&2
  exit 1
fi

ensure_npm_tools

echo "==> Building the local host"
dotnet build src/TelemetryFunctions.LocalHost -c Release -nologo -v quiet
out="$root/src/TelemetryFunctions.LocalHost/bin/Release/net10.0"

host_pid=""
azurite_pid=""

# True while the process runs (an exited child not yet waited for is a zombie: not running).
running() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# Asks a process to stop and waits until it has exited, or until the optional check says its work is done, for at
# most some seconds; then kills it.
stop_process() {
  local pid=$1 name=$2 grace=$3 done_check=${4:-}
  [ -n "$pid" ] && running "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((grace * 5))); do
    running "$pid" || return 0
    if [ -n "$done_check" ] && "$done_check"; then kill -KILL "$pid" 2>/dev/null || true; return 0; fi
    sleep 0.2
  done
  echo "    $name did not stop within ${grace} s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# Azurite reports each service closed once its data is saved; its node process can linger for a minute after that.
azurite_log=""
azurite_closed() { [ "$(grep -c 'successfully closed' "$azurite_log" 2>/dev/null)" -ge 3 ]; }

# Runs on Ctrl-C, on a closed terminal (HUP) and on exit. Without -e: once the terminal is gone every echo fails, and
# a failing echo must not end the cleanup before the emulator is stopped.
cleanup() {
  trap - INT TERM HUP EXIT
  set +e
  echo
  echo "==> Stopping"
  # The host first, so that nothing writes while the emulator shuts down. Azurite saves its data when it stops:
  # it is given longer when it keeps data on disk; in memory there is nothing to save.
  stop_process "$host_pid" "the local host" 15
  if [ -n "$azurite_pid" ] && running "$azurite_pid"; then
    [ "$in_memory" = 1 ] || echo "    Azurite is saving its data in .local-data/azurite"
    stop_process "$azurite_pid" "Azurite" 60 azurite_closed
  fi
  wait 2>/dev/null || true
  [ -z "$azurite_log" ] || rm -f "$azurite_log"
  echo "==> Stopped"
}
trap cleanup INT TERM HUP EXIT

# What answers on an emulator port: "azurite" (its blob, queue or table service says so), "other" or "free".
emulator_port() {
  port_open "$1" || { echo free; return; }
  local headers
  headers=$(curl -s -m 3 -o /dev/null -D - "http://127.0.0.1:$1/devstoreaccount1" 2>/dev/null || true)
  if grep -qi '^server: *azurite' <<<"$headers"; then
    echo azurite
  else
    echo other
  fi
}

ports_taken=0
for emulator in 10000 10001 10002; do
  case "$(emulator_port "$emulator")" in
    azurite) ports_taken=$((ports_taken + 1)) ;;
    other) echo "error: port $emulator, which the storage emulator uses, is held by something that is not Azurite; stop it first." >&2; exit 1 ;;
  esac
done

if [ "$ports_taken" = 3 ]; then
  # Started elsewhere (another run of this script, the Azurite extension of an editor): whether it keeps its data is
  # its own setting, so say that this run's choice does not apply.
  echo "==> Using the Azurite already listening on 127.0.0.1:10000-10002"
  if [ "$in_memory" = 1 ]; then
    echo "    note: --in-memory does not apply to it; whatever this run writes stays as long as that Azurite keeps it"
  else
    echo "    note: this run's data goes to that Azurite, not to .local-data/azurite; it is kept only if that Azurite keeps it"
  fi
elif [ "$ports_taken" != 0 ]; then
  echo "error: Azurite answers on some of the ports 10000-10002 but not all; stop it and run this script again." >&2
  exit 1
else
  azurite_args=(--silent --skipApiVersionCheck --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1)
  if [ "$in_memory" = 1 ]; then
    azurite_args+=(--inMemoryPersistence)
    echo "==> Starting Azurite (in memory)"
  else
    mkdir -p .local-data/azurite
    azurite_args+=(--location .local-data/azurite)
    echo "==> Starting Azurite (data in .local-data/azurite)"
  fi
  # In a session of its own, so that a Ctrl-C in the terminal reaches only this script and the host: the cleanup
  # below then stops the emulator once, after the host.
  azurite_log=$(mktemp -t azurite.XXXXXX.log)
  setsid node_modules/.bin/azurite "${azurite_args[@]}" >"$azurite_log" 2>&1 &
  azurite_pid=$!
  for _ in $(seq 1 100); do port_open 10002 && break; running "$azurite_pid" || break; sleep 0.2; done
  if ! port_open 10002 || ! running "$azurite_pid"; then
    echo "error: Azurite did not start:" >&2
    cat "$azurite_log" >&2
    exit 1
  fi
fi

echo "==> Starting the local host"
(cd "$out" && ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}" exec dotnet TelemetryFunctions.LocalHost.dll --urls "http://127.0.0.1:$port") &
host_pid=$!
for _ in $(seq 1 150); do
  running "$host_pid" || break
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! running "$host_pid" || ! curl -fsS "http://127.0.0.1:$port/health" >/dev/null; then
  echo "error: the local host did not start (see its output above)." >&2
  exit 1
fi

cat <<INFO

TelemetryFunctions is running at http://127.0.0.1:$port

  Write keys   dev-write-key (source "server"), dev-installer-key ("installer"), dev-client-key ("client")
  Admin key    dev-admin-key
  Report key   dev-usage-report-key (usage reports of customer "dev-customer")
  Storage      UseDevelopmentStorage=true (Azurite on 127.0.0.1:10000-10002)

Send an event:
  curl -u dev-write-key: -H 'Content-Type: application/json' \\
    -d '{"type":"track","event":"Instance Active","userId":"u1","properties":{"instanceId":"i-1","version":"1.0.0"}}' \\
    http://127.0.0.1:$port/v1/track

Press Ctrl-C to stop.
INFO

# Until either process ends (Azurite is not ours when one was already listening).
wait -n "$host_pid" ${azurite_pid:+"$azurite_pid"}
