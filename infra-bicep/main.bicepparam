// Parameters of a TelemetryFunctions deployment. scripts/deploy.sh deploys with this file; the values it
// decides at deploy time come in through the TELEMETRY_* environment variables read below, and each has a
// default that suits a first, manual deployment (az deployment group create --parameters main.bicepparam).
// Secrets are never set here: main.bicep generates them, and Key Vault keeps them.
using 'main.bicep'

param baseName = 'telemetry'

// A storage account of its own: no table prefix.

param storageSkuName = 'Standard_LRS'

param scale = {
  instanceMemoryMB: 2048
  maximumInstanceCount: 100
}

// Equal to host.json's extensions.http.maxConcurrentRequests: the platform hands an instance as many requests as its
// host runs at once (docs/deploy.md, "HTTP concurrency").
param httpPerInstanceConcurrency = 100

param schedules = {
  sweep: '0 */15 * * * *'
  rollup: '0 15 0 * * *'
  retention: '0 30 1 * * *'
  reconcile: '0 */30 * * * *'
}

param reportingTimeZone = 'UTC'

// Usage-report customers: ids and entitlements only. Their signing secrets and report keys are Key Vault secrets
// (usage-customer-<id>-signing-secret, -report-key) that scripts/deploy.sh creates when missing (docs/deploy.md).
param usageReportCustomers = []

// Comma-separated names of Key Vault secrets to keep as they are (the deploy script lists the existing ones).
var secretsToKeepList = readEnvironmentVariable('TELEMETRY_SECRETS_TO_KEEP', '')
param secretsToKeep = empty(secretsToKeepList) ? [] : split(secretsToKeepList, ',')

// Who may read the secrets besides the app: the deploy script passes the signed-in user.
var secretReaderId = readEnvironmentVariable('TELEMETRY_SECRET_READER_ID', '')
param secretReaders = empty(secretReaderId)
  ? []
  : [
      {
        principalId: secretReaderId
        principalType: readEnvironmentVariable('TELEMETRY_SECRET_READER_TYPE', 'User')
      }
    ]

// Second pass of the deploy script, once the published code runs its blob trigger.
param deployEventSubscription = bool(readEnvironmentVariable('TELEMETRY_DEPLOY_EVENT_SUBSCRIPTION', 'false'))
