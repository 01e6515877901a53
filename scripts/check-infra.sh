#!/usr/bin/env bash
# Checks the Azure deployment without touching Azure: builds and lints every Bicep file and the parameter
# file with the pinned Bicep CLI (installed by scripts/install-bicep.sh), then checks every shell script
# with bash -n and ShellCheck. Any warning fails the check, as an error does.
#
#   scripts/check-infra.sh
#
# Needs: .NET SDK (to restore the Bicep CLI once), bash. ShellCheck is installed with apt-get when it is
# missing and this runs as root; otherwise its check is skipped and the script says so.
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Runs a command that must succeed and print nothing: Bicep prints warnings and still exits 0, so any
# output counts as a failure.
run_clean() {
  local what="$1"
  shift
  local diagnostics
  if ! diagnostics="$("$@" 2>&1)"; then
    printf '%s\n' "$diagnostics" >&2
    fail "$what"
  elif [ -n "$diagnostics" ]; then
    printf '%s\n' "$diagnostics" >&2
    fail "$what (warnings)"
  else
    echo "ok   $what"
  fi
}

echo "==> Bicep CLI"
bicep="$(scripts/install-bicep.sh | tail -n 1)"
"$bicep" --version

echo "==> Bicep files"
mapfile -t bicep_files < <(find infra-bicep -name '*.bicep' -type f | sort)
mapfile -t param_files < <(find infra-bicep -name '*.bicepparam' -type f | sort)
[ "${#bicep_files[@]}" -gt 0 ] || fail "no .bicep files under infra-bicep/"
[ "${#param_files[@]}" -gt 0 ] || fail "no .bicepparam files under infra-bicep/"
printf '     %s\n' "${bicep_files[@]}" "${param_files[@]}"

# One Bicep process per step (each start costs seconds); --no-restore keeps it offline, and there is
# nothing to restore: every module is a local file.
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
run_clean "bicep build (every .bicep file)" "$bicep" build --pattern 'infra-bicep/**/*.bicep' --no-restore --outdir "$build_dir"
run_clean "bicep lint (every .bicep and .bicepparam file)" "$bicep" lint --pattern 'infra-bicep/**/*.bicep*' --no-restore
# Formatting: the formatter's output must equal the files as committed.
mkdir -p "$build_dir/format"
cp -R infra-bicep "$build_dir/format/"
run_clean "bicep format (into a copy)" "$bicep" format --pattern "$build_dir/format/infra-bicep/**/*.bicep*"
run_clean "formatting matches bicep format" diff -ru infra-bicep "$build_dir/format/infra-bicep"
for file in "${param_files[@]}"; do
  run_clean "bicep build-params $file" "$bicep" build-params "$file" --no-restore --outfile "$build_dir/$(basename "$file").json"
done

echo "==> Shell scripts"
mapfile -t scripts < <({ find scripts -name '*.sh' -type f; [ -f .ci/run ] && echo .ci/run; } | sort)
for script in "${scripts[@]}"; do
  run_clean "bash -n $script" bash -n "$script"
done

if ! command -v shellcheck >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> Installing ShellCheck (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 || true
  fi
fi
if command -v shellcheck >/dev/null; then
  for script in "${scripts[@]}"; do
    run_clean "shellcheck $script" shellcheck -x "$script"
  done
else
  echo "SKIPPED: shellcheck - not installed, and it could not be installed here (needs root and apt-get). Install the 'shellcheck' package to run this check."
fi

if [ "$failures" -gt 0 ]; then
  echo "==> $failures infrastructure check(s) failed" >&2
  exit 1
fi
echo "==> All infrastructure checks passed"
