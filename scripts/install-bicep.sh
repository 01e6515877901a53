#!/usr/bin/env bash
# Installs the pinned Bicep CLI into .tools/bicep/ (git-ignored) from its NuGet package, so the
# infrastructure checks need nothing but the .NET SDK and a NuGet source.
#
#   scripts/install-bicep.sh          installs once; does nothing when the pinned version is present
#   scripts/install-bicep.sh --force  reinstalls
#
# Prints the path of the bicep binary on its last line.
set -euo pipefail

bicep_version=0.49.2
package_id=Azure.Bicep.CommandLine.linux-x64

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool_dir="$root/.tools/bicep"
bicep="$tool_dir/bicep"

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
  *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "error: this script installs the linux-x64 Bicep CLI; on $(uname -s) $(uname -m) install Bicep yourself (az bicep install) and put it on PATH." >&2
  exit 1
fi

if [ "$force" = 0 ] && [ -x "$bicep" ] && "$bicep" --version 2>/dev/null | grep -q "$bicep_version"; then
  echo "$bicep"
  exit 0
fi

command -v dotnet >/dev/null || { echo "error: 'dotnet' is not installed; it restores the Bicep CLI package from NuGet." >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway project outside the repository (so its Directory.*.props do not apply) whose only job is to
# download the package; PackageDownload fetches it without resolving any assets.
cat > "$work/restore.csproj" <<PROJECT
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>netstandard2.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$package_id" Version="[$bicep_version]" />
  </ItemGroup>
</Project>
PROJECT

echo "==> Restoring $package_id $bicep_version" >&2
dotnet restore "$work/restore.csproj" --packages "$work/packages" -nologo -v quiet >&2

package_dir="$work/packages/$(echo "$package_id" | tr '[:upper:]' '[:lower:]')/$bicep_version"
found="$(find "$package_dir" -type f -name bicep | head -n 1)"
[ -n "$found" ] || { echo "error: no 'bicep' binary in $package_id $bicep_version." >&2; exit 1; }

mkdir -p "$tool_dir"
install -m 0755 "$found" "$bicep"
"$bicep" --version >&2
echo "$bicep"
