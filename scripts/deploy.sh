#!/usr/bin/env bash
# Deploys TelemetryFunctions to Azure: the infrastructure (infra-bicep/main.bicep with main.bicepparam),
# then the app's code, then the Event Grid subscription that needs the running code. Safe to rerun: it
# updates what exists and keeps the secrets already in Key Vault.
#
#   scripts/deploy.sh -g RESOURCE_GROUP [-l LOCATION]   deploy everything (creates the group when missing)
#   scripts/deploy.sh -g RESOURCE_GROUP --what-if       only show what the infrastructure deployment would change
#   scripts/deploy.sh -g RESOURCE_GROUP --skip-publish  infrastructure only, no code
#
# Options: --subscription ID_OR_NAME, --name DEPLOYMENT_NAME (default telemetry), --no-smoke-test.
# Needs: a recent Azure CLI (one where 'az functionapp list-flexconsumption-locations' works), signed in
# (az login) as Owner, or Contributor + Role Based Access Control Administrator, of the resource group or
# subscription; .NET SDK 10 and zip to publish the app. docs/deploy.md explains it all.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

resource_group="${TELEMETRY_RESOURCE_GROUP:-}"
location=""
subscription=""
deployment_name="telemetry"
what_if=0
publish=1
smoke_test=1

usage() { sed -n '2,13p' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    -g|--resource-group) resource_group="${2:?$1 needs a resource group name}"; shift ;;
    -l|--location) location="${2:?$1 needs an Azure region}"; shift ;;
    --subscription) subscription="${2:?$1 needs a subscription id or name}"; shift ;;
    --name) deployment_name="${2:?$1 needs a deployment name}"; shift ;;
    --what-if) what_if=1 ;;
    --skip-publish) publish=0 ;;
    --no-smoke-test) smoke_test=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "Unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------------------

missing=()
command -v az >/dev/null || missing+=("Azure CLI 'az' (https://learn.microsoft.com/cli/azure/install-azure-cli), then 'az login'")
if [ "$what_if" = 0 ] && [ "$publish" = 1 ]; then
  command -v dotnet >/dev/null || missing+=(".NET SDK 10 'dotnet' (https://dot.net), to publish the app")
  command -v zip >/dev/null || missing+=("'zip' (Debian/Ubuntu: apt-get install zip), to package the app")
  if [ "$smoke_test" = 1 ]; then
    command -v curl >/dev/null || missing+=("'curl' (Debian/Ubuntu: apt-get install curl), for the smoke test (or pass --no-smoke-test)")
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: missing prerequisites:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

[ -n "$resource_group" ] || die "name the resource group: scripts/deploy.sh -g RESOURCE_GROUP (see --help)."

if [ -n "$subscription" ]; then
  az account set --subscription "$subscription" || die "cannot select subscription '$subscription' (az account list shows yours)."
fi
if ! account="$(az account show --query '[name, id, user.name, user.type]' -o tsv 2>/dev/null)"; then
  die "the Azure CLI is not signed in: run 'az login' (and 'az account set --subscription ...' to pick a subscription)."
fi
{ read -r account_name; read -r account_id; read -r account_user; read -r account_type; } <<<"$account"
say "Subscription $account_name ($account_id), signed in as $account_user ($account_type)"

# Compile the templates with the pinned Bicep CLI when it can be installed here (Linux x64), so the
# deployment uses the same compiler as scripts/check-infra.sh; otherwise the Azure CLI uses its own.
if bicep_path="$(scripts/install-bicep.sh 2>/dev/null | tail -n 1)" && [ -x "$bicep_path" ]; then
  PATH="$(dirname "$bicep_path"):$PATH"
  export PATH
  export AZURE_BICEP_USE_BINARY_FROM_PATH=true
  export AZURE_BICEP_CHECK_VERSION=false
fi

params_file="infra-bicep/main.bicepparam"

# ---------------------------------------------------------------------------------------------------------
# Resource group
# ---------------------------------------------------------------------------------------------------------

if [ "$(az group exists --name "$resource_group")" = true ]; then
  group_location="$(az group show --name "$resource_group" --query location -o tsv)"
  if [ -n "$location" ] && [ "$location" != "$group_location" ]; then
    die "resource group $resource_group is in $group_location, not $location: resources go to the group's region (drop -l, or use another group)."
  fi
  say "Resource group $resource_group ($group_location)"
elif [ "$what_if" = 1 ]; then
  die "resource group $resource_group does not exist, and --what-if changes nothing: create it first (az group create -n $resource_group -l REGION)."
else
  [ -n "$location" ] || die "resource group $resource_group does not exist: give its region with -l (az functionapp list-flexconsumption-locations -o table lists the regions that offer Flex Consumption)."
  say "Creating resource group $resource_group in $location"
  az group create --name "$resource_group" --location "$location" --output none
fi

# ---------------------------------------------------------------------------------------------------------
# Deployment parameters decided here (main.bicepparam reads them from TELEMETRY_* variables)
# ---------------------------------------------------------------------------------------------------------

# Secrets already in the vault are kept: main.bicep writes only the ones missing. The names come from the
# control plane (Reader is enough), never the values. A failure here stops the script: deploying with an
# empty list would replace every secret, the pseudonymization key included.
existing_secrets() {
  local vault_name vault_count vault_id
  vault_name="$(az deployment group show --resource-group "$resource_group" --name "$deployment_name" \
    --query 'properties.outputs.keyVaultName.value' -o tsv 2>/dev/null || true)"
  if [ -z "$vault_name" ]; then
    vault_count="$(az resource list --resource-group "$resource_group" --resource-type Microsoft.KeyVault/vaults --query 'length(@)' -o tsv)"
    case "$vault_count" in
      0) return 0 ;;
      1) vault_name="$(az resource list --resource-group "$resource_group" --resource-type Microsoft.KeyVault/vaults --query '[0].name' -o tsv)" ;;
      *) echo "error: $resource_group holds $vault_count key vaults and no deployment named '$deployment_name' says which is this app's; deploy to a group of its own, or pass --name with the original deployment name." >&2
         return 1 ;;
    esac
  fi
  vault_id="$(az resource show --resource-group "$resource_group" --resource-type Microsoft.KeyVault/vaults --name "$vault_name" --query id -o tsv)"
  # The list comes in pages (nextLink): with a few customers' secrets a vault holds more than one, and a secret missed
  # here would be written again with a new random value. Each page answers "<nextLink>|<name>,<name>,...".
  local url="${vault_id}/secrets?api-version=2024-11-01" page names="" part
  while [ -n "$url" ]; do
    page="$(az rest --method get --url "$url" --query "join('|', [nextLink || '', join(',', value[].name)])" -o tsv)" || return 1
    part="${page##*|}"
    if [ -n "$part" ]; then names="${names:+$names,}$part"; fi
    url="${page%|*}"
  done
  printf '%s\n' "$names"
}

# The signed-in principal may read the secrets, so the commands printed at the end work.
reader_id=""
reader_type=""
case "$account_type" in
  user)
    reader_id="$(az ad signed-in-user show --query id -o tsv 2>/dev/null || true)"
    reader_type=User ;;
  servicePrincipal)
    reader_id="$(az ad sp show --id "$account_user" --query id -o tsv 2>/dev/null || true)"
    reader_type=ServicePrincipal ;;
esac
if [ -z "$reader_id" ]; then
  echo "note: could not find the signed-in principal's object id; nobody but the app gets read access to the secrets (grant 'Key Vault Secrets User' by hand)."
fi

deploy_infrastructure() {
  local event_subscription="$1" keep
  keep="$(existing_secrets)" || die "could not list the secrets already in Key Vault; stopping rather than replacing them."
  TELEMETRY_SECRETS_TO_KEEP="$keep" \
  TELEMETRY_SECRET_READER_ID="$reader_id" \
  TELEMETRY_SECRET_READER_TYPE="${reader_type:-User}" \
  TELEMETRY_DEPLOY_EVENT_SUBSCRIPTION="$event_subscription" \
    az deployment group create \
      --resource-group "$resource_group" \
      --name "$deployment_name" \
      --parameters "$params_file" \
      --output none
}

output() {
  az deployment group show --resource-group "$resource_group" --name "$deployment_name" \
    --query "properties.outputs.$1.value" -o tsv
}

# ---------------------------------------------------------------------------------------------------------
# What-if
# ---------------------------------------------------------------------------------------------------------

if [ "$what_if" = 1 ]; then
  say "What-if: changes the deployment would make (nothing is changed)"
  keep="$(existing_secrets)" || die "could not list the secrets already in Key Vault."
  # Never with the event subscription, even when TELEMETRY_DEPLOY_EVENT_SUBSCRIPTION=true is in the environment: its
  # webhook URL carries the blob extension's system key, which what-if may print in full.
  TELEMETRY_SECRETS_TO_KEEP="$keep" \
  TELEMETRY_SECRET_READER_ID="$reader_id" \
  TELEMETRY_SECRET_READER_TYPE="${reader_type:-User}" \
  TELEMETRY_DEPLOY_EVENT_SUBSCRIPTION=false \
    az deployment group what-if \
      --resource-group "$resource_group" \
      --name "$deployment_name" \
      --parameters "$params_file"
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------
# 1. Infrastructure
# ---------------------------------------------------------------------------------------------------------

say "Deploying the infrastructure ($params_file); the first time takes a few minutes"
deploy_infrastructure false

app_name="$(output functionAppName)"
ingest_url="$(output ingestUrl)"
dashboard_url="$(output dashboardUrl)"
vault_name="$(output keyVaultName)"
host_name="$(output functionAppHostName)"
say "Function app $app_name, Key Vault $vault_name"

# Usage-report customers (usageReportCustomers in main.bicepparam): the template gives a customer its app settings
# only once both of its Key Vault secrets exist, so the app never holds a reference to a missing secret. Create the
# missing ones with random values, through the control plane as the deployment writes the other secrets (your role on
# the resource group is enough), then deploy again so those customers are configured. Values are never printed.
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
mapfile -t missing_customer_secrets < <(output usageReportCustomerSecretsMissing)
if [ "${#missing_customer_secrets[@]}" -gt 0 ] && [ -n "${missing_customer_secrets[0]}" ]; then
  say "Creating ${#missing_customer_secrets[@]} usage-report customer secret(s) in $vault_name"
  vault_id="$(az resource show --resource-group "$resource_group" --resource-type Microsoft.KeyVault/vaults \
    --name "$vault_name" --query id -o tsv)"
  secret_body="$(mktemp)"
  chmod 600 "$secret_body"
  for secret_name in "${missing_customer_secrets[@]}"; do
    case "$secret_name" in
      *-signing-secret) value="$(random_hex 32)"; content_type='usage-report signing secret (HMAC key)' ;;
      *-report-key) value="$(random_hex 24)"; content_type='usage-report key' ;;
      *) rm -f "$secret_body"; die "unexpected usage-report customer secret name '$secret_name'." ;;
    esac
    printf '{"properties":{"value":"%s","contentType":"%s"}}' "$value" "$content_type" >"$secret_body"
    if ! az rest --method put --url "${vault_id}/secrets/${secret_name}?api-version=2024-11-01" \
        --body "@$secret_body" --output none; then
      rm -f "$secret_body"
      die "could not create Key Vault secret $secret_name; rerun the script (customers without both secrets stay unconfigured)."
    fi
    echo "     $secret_name"
  done
  rm -f "$secret_body"
  unset value
  say "Deploying the infrastructure again to configure those usage-report customers"
  deploy_infrastructure false
  still_missing="$(output usageReportCustomerSecretsMissing)"
  [ -z "$still_missing" ] || die "usage-report customer secrets still missing after creating them: $still_missing"
fi
mapfile -t usage_customers < <(output usageReportCustomerIds)

# Customers whose signing secret is being rotated (previousSigningSecretVersion in main.bicepparam): the app's
# PreviousSigningSecret references that version of the secret, pinned. A version that does not exist leaves the reference
# unresolved, and the app refuses to start with it, so check each one (only its attributes are printed, never a value).
mapfile -t signing_rotations < <(az deployment group show --resource-group "$resource_group" --name "$deployment_name" \
  --query 'properties.outputs.usageReportSigningSecretRotations.value[].[id, previousSigningSecretVersion]' -o tsv)
for rotation in "${signing_rotations[@]}"; do
  [ -n "$rotation" ] || continue
  read -r rotating_customer previous_version <<<"$rotation"
  enabled="$(az keyvault secret show --vault-name "$vault_name" --name "usage-customer-${rotating_customer}-signing-secret" \
    --version "$previous_version" --query attributes.enabled -o tsv 2>/dev/null || true)"
  case "$enabled" in
    true) say "Usage-report customer $rotating_customer: signing secret version $previous_version is accepted as the previous one" ;;
    false) die "version $previous_version of usage-customer-${rotating_customer}-signing-secret is disabled: the app cannot read it as PreviousSigningSecret and will not start. Enable it, or fix previousSigningSecretVersion in main.bicepparam and deploy again." ;;
    *) echo "note: could not read version $previous_version of usage-customer-${rotating_customer}-signing-secret (it may not exist, or your role on $vault_name is still spreading). If it does not exist the app will not start: check previousSigningSecretVersion (docs/deploy.md, \"Rotating a customer's signing secret\")." ;;
  esac
done

# ---------------------------------------------------------------------------------------------------------
# 2. Code
# ---------------------------------------------------------------------------------------------------------

if [ "$publish" = 1 ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT

  say "Publishing src/TelemetryFunctions (Release)"
  dotnet publish src/TelemetryFunctions -c Release -o "$work/app" -nologo -v quiet
  (cd "$work/app" && zip -qr "$work/app.zip" .)

  say "Deploying the package to $app_name (Flex Consumption one-deploy)"
  az functionapp deploy --resource-group "$resource_group" --name "$app_name" \
    --src-path "$work/app.zip" --type zip --output none

  # -------------------------------------------------------------------------------------------------------
  # 3. Event Grid subscription (second pass)
  # -------------------------------------------------------------------------------------------------------
  # The subscription's webhook URL carries the blob extension's system key, which the host creates once it
  # runs an Event Grid-sourced blob trigger; wait for it, then deploy again with the subscription on.
  say "Waiting for the blob extension's system key"
  blobs_key=""
  for _ in $(seq 1 12); do
    blobs_key="$(az functionapp keys list --resource-group "$resource_group" --name "$app_name" \
      --query 'systemKeys.blobs_extension' -o tsv 2>/dev/null || true)"
    [ -n "$blobs_key" ] && break
    sleep 10
  done
  if [ -n "$blobs_key" ]; then
    say "Deploying the infrastructure again with the usage-report Event Grid subscription"
    deploy_infrastructure true
  else
    echo "note: the app has no blob extension key yet: no function with an Event Grid-sourced blob trigger"
    echo "      (ProcessUsageReport) runs in the published code, so the usage-report subscription was not"
    echo "      created. Rerun this script once that function is published."
  fi

  # -------------------------------------------------------------------------------------------------------
  # 4. The admin key as a Functions key
  # -------------------------------------------------------------------------------------------------------
  # In Azure the Functions host itself checks x-functions-key / ?code= on the read and admin routes
  # (AuthorizationLevel.Function), against its own keys: make the vault's admin key one of them, a host-level
  # function key named telemetry-admin, so the key docs/deploy.md hands out is the key Azure accepts.
  # Your role on the vault can take a few minutes to apply, hence the retries.
  say "Setting the vault's admin key as the app's host function key 'telemetry-admin'"
  admin_key=""
  for _ in $(seq 1 12); do
    admin_key="$(az keyvault secret show --vault-name "$vault_name" --name telemetry-admin-key \
      --query value -o tsv 2>/dev/null || true)"
    [ -n "$admin_key" ] && break
    sleep 10
  done
  # The key reaches az on standard input ('@-': the Azure CLI reads an argument's value from there), never on a
  # command line, where any local user could read it (ps, /proc/<pid>/cmdline). printf is a shell builtin: it starts no
  # process. Never with an empty key: az would then generate a random one.
  if [ -n "$admin_key" ] && printf '%s' "$admin_key" | az functionapp keys set --resource-group "$resource_group" \
      --name "$app_name" --key-type functionKeys --key-name telemetry-admin --key-value @- --output none; then
    echo "ok: the admin key opens the read and admin routes (x-functions-key header or code parameter)."
  else
    echo "note: the admin key is not a Functions key yet, so the read and admin routes answer 401 with it."
    echo "      Once you can read the vault, run: docs/deploy.md, \"The admin key in Azure\"."
  fi
  unset admin_key
fi

# ---------------------------------------------------------------------------------------------------------
# 5. Smoke test and what to do next
# ---------------------------------------------------------------------------------------------------------

if [ "$publish" = 1 ] && [ "$smoke_test" = 1 ] && [ -n "$reader_id" ]; then
  say "Smoke test: POST /v1/preview with the server write key (stores nothing)"
  # New role assignments can take a few minutes to apply; retry reading the key.
  server_key=""
  for _ in $(seq 1 12); do
    server_key="$(az keyvault secret show --vault-name "$vault_name" --name telemetry-write-key-server \
      --query value -o tsv 2>/dev/null || true)"
    [ -n "$server_key" ] && break
    sleep 10
  done
  if [ -z "$server_key" ]; then
    echo "note: could not read the write key yet (role assignments may still be spreading); try the curl in docs/deploy.md in a few minutes."
  else
    status=""
    for _ in $(seq 1 6); do
      # The key goes to curl on standard input, not on its command line.
      status="$(printf 'user = "%s:"\n' "$server_key" | curl -sS --config - -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d '{"type":"track","event":"Deployment Checked","anonymousId":"deploy-smoke-test"}' \
        "https://$host_name/v1/preview" || true)"
      [ "$status" = 200 ] && break
      sleep 10
    done
    if [ "$status" = 200 ]; then
      echo "ok: the app answered 200 with the server write key."
    else
      echo "note: /v1/preview answered '${status:-no response}'. The app may still be starting, or a Key Vault reference did not resolve: see docs/deploy.md, Troubleshooting."
    fi
  fi
fi

cat <<EOF

Ingest URL     $ingest_url
Dashboard URL  $dashboard_url

Read the keys (your account was granted Key Vault Secrets User on $vault_name; allow a few minutes):
  az keyvault secret show --vault-name $vault_name --name telemetry-write-key-server    --query value -o tsv
  az keyvault secret show --vault-name $vault_name --name telemetry-write-key-installer --query value -o tsv
  az keyvault secret show --vault-name $vault_name --name telemetry-write-key-client    --query value -o tsv
  az keyvault secret show --vault-name $vault_name --name telemetry-admin-key           --query value -o tsv

$(for customer in "${usage_customers[@]}"; do
  [ -n "$customer" ] || continue
  printf 'Usage-report customer %s (hand both over a secure channel):\n' "$customer"
  printf '  az keyvault secret show --vault-name %s --name usage-customer-%s-signing-secret --query value -o tsv\n' "$vault_name" "$customer"
  printf '  az keyvault secret show --vault-name %s --name usage-customer-%s-report-key     --query value -o tsv\n\n' "$vault_name" "$customer"
done)
Send a first event (the key goes to curl through its configuration on standard input, not its command line):
  az keyvault secret show --vault-name $vault_name --name telemetry-write-key-installer --query value -o tsv \\
    | sed 's/.*/user = "&:"/' | curl --config - \\
    -H 'Content-Type: application/json' \\
    -d '{"type":"track","event":"Installation Started","anonymousId":"install-123"}' \\
    https://$host_name/v1/track
EOF
