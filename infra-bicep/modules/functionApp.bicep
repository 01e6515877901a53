metadata name = 'Function app'
metadata description = 'The Flex Consumption plan and the function app, running as the user-assigned identity with identity-based connections and Key Vault references for every secret.'

import {
  flexScaleType
  identityReferenceType
  secretUrisType
  tagsType
  timerSchedulesType
  usageReportCustomerSettingsType
} from 'types.bicep'

@description('Required. Name of the function app (also its host name: <name>.azurewebsites.net).')
@minLength(2)
@maxLength(60)
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Required. Azure region of the plan and the app.')
param location string

@description('Optional. Tags of the plan and the app.')
param tags tagsType = {}

@description('Required. The identity the app runs as.')
param identity identityReferenceType

@description('Required. Name of the storage account that holds the app\'s data, the host\'s state and the deployment package.')
param storageAccountName string

@description('Required. Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Required. Key Vault secret URIs the app settings reference.')
param secretUris secretUrisType

@description('Required. URI of the Key Vault, ending with a slash.')
param keyVaultUri string

@description('Optional. Usage-report customers whose signing secret and report key exist in the vault; each becomes Telemetry__UsageReports__Customers__N__* settings, in this order (PreviousSigningSecret only while its signing secret is rotated).')
param usageReportCustomers usageReportCustomerSettingsType[] = []

@description('Optional. Memory and scale-out limit of the app.')
param scale flexScaleType = {
  instanceMemoryMB: 2048
  maximumInstanceCount: 100
}

@description('Optional. The most HTTP requests the platform sends one instance at a time (Flex Consumption HTTP trigger concurrency); more in flight scale the app out. At most host.json\'s extensions.http.maxConcurrentRequests (100), which the host enforces on each instance: a higher value would send requests that the host only queues.')
@minValue(1)
@maxValue(100)
param httpPerInstanceConcurrency int = 100

@description('Optional. .NET version of the isolated worker.')
param dotnetVersion string = '10.0'

@description('Required. Schedules of the timer functions.')
param schedules timerSchedulesType

@description('Optional. Time zone whose days bound "a day" in reports: an IANA id such as Europe/Berlin, or a Windows id such as W. Europe Standard Time.')
param reportingTimeZone string = 'UTC'

resource storageAccount 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.resourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Key Vault references resolve as the user-assigned identity (the app has no system identity).
    keyVaultReferenceIdentity: identity.resourceId
    // No platform CORS (siteConfig.cors): the app answers the ingest routes' preflights itself; the platform's would
    // take every route's OPTIONS from the app and open the admin and read API routes to other origins too.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.resourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: scale.instanceMemoryMB
        maximumInstanceCount: scale.maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'dotnet-isolated'
        version: dotnetVersion
      }
    }
  }
}

var keyVaultReference = '@Microsoft.KeyVault(SecretUri={0})'

// Telemetry__UsageReports__Customers__N__{Id,SigningSecret,ReportKey,Entitlements__M__{Metric,MonthlyQuantity}}, the
// secrets as Key Vault references to version-less URIs (the app reads the current version). While a customer's signing
// secret is rotated, __PreviousSigningSecret references the version being replaced, pinned, so a new current version
// does not move it.
var usageCustomerSettings = reduce(
  map(
    range(0, length(usageReportCustomers)),
    n =>
      union(
        empty(usageReportCustomers[n].?previousSigningSecretVersion ?? '')
          ? {}
          : {
              'Telemetry__UsageReports__Customers__${n}__PreviousSigningSecret': format(
                keyVaultReference,
                '${keyVaultUri}secrets/${usageReportCustomers[n].signingSecretName}/${usageReportCustomers[n].?previousSigningSecretVersion ?? ''}'
              )
            },
        {
          'Telemetry__UsageReports__Customers__${n}__Id': usageReportCustomers[n].id
          'Telemetry__UsageReports__Customers__${n}__SigningSecret': format(
            keyVaultReference,
            '${keyVaultUri}secrets/${usageReportCustomers[n].signingSecretName}'
          )
          'Telemetry__UsageReports__Customers__${n}__ReportKey': format(
            keyVaultReference,
            '${keyVaultUri}secrets/${usageReportCustomers[n].reportKeyName}'
          )
        },
        reduce(
          map(range(0, length(usageReportCustomers[n].entitlements)), m => {
            'Telemetry__UsageReports__Customers__${n}__Entitlements__${m}__Metric': usageReportCustomers[n].entitlements[m].metric
            'Telemetry__UsageReports__Customers__${n}__Entitlements__${m}__MonthlyQuantity': string(usageReportCustomers[n].entitlements[m].monthlyQuantity)
          }),
          {},
          (all, entitlement) => union(all, entitlement)
        )
      )
  ),
  {},
  (all, customer) => union(all, customer)
)

resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(
    {
      // The Functions host's own storage, reached with the identity (no connection string, no key).
      AzureWebJobsStorage__accountName: storageAccount.name
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.clientId

      // Telemetry to Application Insights, authenticated with Entra ID as the identity.
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identity.clientId}'

      // DefaultAzureCredential in the app picks the user-assigned identity through this variable.
      AZURE_CLIENT_ID: identity.clientId

      // The app's data: tables and blobs through DefaultAzureCredential.
      Telemetry__Storage__TableServiceUri: storageAccount.properties.primaryEndpoints.table
      Telemetry__Storage__BlobServiceUri: storageAccount.properties.primaryEndpoints.blob
      Telemetry__ReportingTimeZone: reportingTimeZone

      // Connection "UsageReportsStorage" of the Event Grid-sourced blob trigger.
      UsageReportsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
      UsageReportsStorage__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
      UsageReportsStorage__credential: 'managedidentity'
      UsageReportsStorage__clientId: identity.clientId

      // Secrets: Key Vault references resolved by the platform as the identity.
      Telemetry__Privacy__PseudonymizationKey: format(keyVaultReference, secretUris.pseudonymizationKey)
      Telemetry__WriteKeys__0__Key: format(keyVaultReference, secretUris.serverWriteKey)
      Telemetry__WriteKeys__0__Source: 'server'
      Telemetry__WriteKeys__1__Key: format(keyVaultReference, secretUris.installerWriteKey)
      Telemetry__WriteKeys__1__Source: 'installer'
      Telemetry__WriteKeys__2__Key: format(keyVaultReference, secretUris.clientWriteKey)
      Telemetry__WriteKeys__2__Source: 'client'
      Telemetry__AdminKey: format(keyVaultReference, secretUris.adminKey)
      // Usage-report customers (Telemetry__UsageReports__Customers__N__*) come from usageCustomerSettings, merged below.

      // Timer schedules, bound with %AppSetting% expressions.
      TelemetrySweepSchedule: schedules.sweep
      TelemetryRollupSchedule: schedules.rollup
      TelemetryRetentionSchedule: schedules.retention
      TelemetryReconcileSchedule: schedules.reconcile
    },
    usageCustomerSettings
  )
}

// Deployments authenticate with Entra ID (az functionapp deploy); publishing user names and passwords are off.
resource ftpPublishingCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishingCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the function app.')
output name string = functionApp.name

@description('Resource id of the function app.')
output resourceId string = functionApp.id

@description('Default host name of the function app.')
output defaultHostName string = functionApp.properties.defaultHostName

@description('Name of the Flex Consumption plan.')
output planName string = plan.name

@description('Resource id of the Flex Consumption plan.')
output planResourceId string = plan.id
