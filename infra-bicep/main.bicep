metadata name = 'TelemetryFunctions'
metadata description = 'Everything TelemetryFunctions needs in one resource group: a Flex Consumption function app running as a user-assigned identity, storage reachable only with Entra ID, secrets in Key Vault, Entra-authenticated Application Insights, and Event Grid delivery of new usage reports.'

targetScope = 'resourceGroup'

import { flexScaleType, principalReferenceType, tagsType, timerSchedulesType, usageReportCustomerType } from 'modules/types.bicep'

// ---------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------

@description('Optional. Azure region of every resource. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Optional. Short name that starts the resource names (lowercase letters, digits, hyphens).')
@minLength(2)
@maxLength(20)
param baseName string = 'telemetry'

@description('Optional. Tags of every resource.')
param tags tagsType = {
  application: 'TelemetryFunctions'
}

@description('Optional. Redundancy of the storage account.')
param storageSkuName 'Standard_LRS' | 'Standard_ZRS' | 'Standard_GRS' | 'Standard_GZRS' = 'Standard_LRS'

@description('Optional. Memory and scale-out limit of the function app.')
param scale flexScaleType = {
  instanceMemoryMB: 2048
  maximumInstanceCount: 100
}

@description('Optional. HTTP requests the platform sends one instance at a time before it scales out (Flex Consumption HTTP trigger concurrency). At most host.json\'s extensions.http.maxConcurrentRequests (100); docs/deploy.md explains how the two relate.')
@minValue(1)
@maxValue(100)
param httpPerInstanceConcurrency int = 100

@description('Optional. Schedules of the timer functions (NCRONTAB, six fields, UTC).')
param schedules timerSchedulesType = {
  sweep: '0 */15 * * * *'
  rollup: '0 15 0 * * *'
  retention: '0 30 1 * * *'
  reconcile: '0 */30 * * * *'
}

@description('Optional. Time zone whose days bound "a day" in reports: an IANA id such as Europe/Berlin, or a Windows id such as W. Europe Standard Time.')
param reportingTimeZone string = 'UTC'

@description('Optional. Days the Log Analytics workspace keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Optional. HMAC key that pseudonymizes identifiers. Generated when not given. Changing it later makes new pseudonyms unrelated to old ones.')
@secure()
@minLength(32)
param pseudonymizationKey string = '${newGuid()}${newGuid()}'

@description('Optional. Write key of the server source (product servers\' heartbeats). Generated when not given.')
@secure()
@minLength(8)
param serverWriteKey string = replace(newGuid(), '-', '')

@description('Optional. Write key of the installer source (installation scripts). Generated when not given.')
@secure()
@minLength(8)
param installerWriteKey string = replace(newGuid(), '-', '')

@description('Optional. Write key of the client source (browsers and desktop clients). Generated when not given.')
@secure()
@minLength(8)
param clientWriteKey string = replace(newGuid(), '-', '')

@description('Optional. Key of the admin and read API. Generated when not given.')
@secure()
@minLength(8)
param adminKey string = '${replace(newGuid(), '-', '')}${replace(newGuid(), '-', '')}'

@description('Optional. Key Vault secrets that already hold values to keep (the deploy script lists them). Secrets not named here are written, so a redeployment without this list replaces every secret with a newly generated one.')
param secretsToKeep string[] = []

@description('Optional. Self-Managed customers allowed to send usage reports: ids, entitlements and, while a signing secret is rotated, the secret version still accepted; never secrets. Each customer\'s signing secret and report key are the Key Vault secrets usage-customer-<id>-signing-secret and usage-customer-<id>-report-key; a customer gets its app settings only once both are in the vault and named in secretsToKeep (the deploy script creates missing ones with random values and deploys again).')
param usageReportCustomers usageReportCustomerType[] = []

@description('Optional. Users, groups or service principals who may read the secrets (Key Vault Secrets User), for example the operator who hands out write keys.')
param secretReaders principalReferenceType[] = []

@description('Optional. Create the Event Grid subscription that triggers usage-report processing. It needs the blob extension\'s system key, which exists only once the published code runs a blob trigger, so the deploy script turns it on in a second pass after publishing.')
param deployEventSubscription bool = false

@description('Optional. Name of the Event Grid-sourced blob-triggered function that processes usage reports.')
param usageReportFunctionName string = 'ProcessUsageReport'

// ---------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, location))
var names = {
  identity: 'id-${baseName}-${resourceToken}'
  logAnalytics: 'log-${baseName}-${resourceToken}'
  applicationInsights: 'appi-${baseName}-${resourceToken}'
  storageAccount: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  plan: 'asp-${baseName}-${resourceToken}'
  functionApp: 'func-${baseName}-${resourceToken}'
  systemTopic: 'evgt-${baseName}-${resourceToken}'
  usageReportSubscription: 'usage-reports-to-${usageReportFunctionName}'
}

var containers = {
  usageReports: 'usage-reports'
  usageReportsQuarantine: 'usage-reports-quarantine'
  deploymentPackage: 'app-package'
  deadLetter: 'eventgrid-deadletter'
  activityDigests: 'activity-digests'
}

// The tables the app reads and writes (it also creates a missing one on first use).
var tables = [
  'RawEvents'
  'Activity'
  'Instances'
  'Installations'
  'SupportRequests'
  'Suppressions'
  'InstanceStatusHistory'
  'InstanceDeadlines'
  'DailyStats'
  'Schedules'
  'UsageRows'
  'UsageMonthly'
  'UsageReports'
  'UsageReportBlobs'
]

// Usage-report customers: secret names derived from the id; only customers whose secrets already exist (listed in
// secretsToKeep) get app settings, so the app never sees a Key Vault reference to a missing secret.
var usageCustomers = map(usageReportCustomers, customer => {
  id: customer.id
  signingSecretName: 'usage-customer-${customer.id}-signing-secret'
  reportKeyName: 'usage-customer-${customer.id}-report-key'
  previousSigningSecretVersion: customer.?previousSigningSecretVersion
  entitlements: customer.?entitlements ?? []
})
var usageCustomersReady = filter(
  usageCustomers,
  customer => contains(secretsToKeep, customer.signingSecretName) && contains(secretsToKeep, customer.reportKeyName)
)
var usageCustomerSecretsMissing = filter(
  flatten(map(usageCustomers, customer => [customer.signingSecretName, customer.reportKeyName])),
  secretName => !contains(secretsToKeep, secretName)
)

// Module deployments are named after this deployment, so a redeployment updates the same ones.
var deploymentPrefix = take(deployment().name, 40)

// ---------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------

module identity 'modules/managedIdentity.bicep' = {
  name: '${deploymentPrefix}-identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: '${deploymentPrefix}-monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'modules/storage.bicep' = {
  name: '${deploymentPrefix}-storage'
  params: {
    name: names.storageAccount
    location: location
    tags: tags
    skuName: storageSkuName
    tableNames: tables
    containerNames: [
      containers.usageReports
      containers.usageReportsQuarantine
      containers.deploymentPackage
      containers.deadLetter
      containers.activityDigests
    ]
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: '${deploymentPrefix}-keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    pseudonymizationKey: pseudonymizationKey
    serverWriteKey: serverWriteKey
    installerWriteKey: installerWriteKey
    clientWriteKey: clientWriteKey
    adminKey: adminKey
    secretsToKeep: secretsToKeep
  }
}

module eventGridTopic 'modules/eventGridTopic.bicep' = {
  name: '${deploymentPrefix}-eventgrid-topic'
  params: {
    name: names.systemTopic
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

module roleAssignments 'modules/roleAssignments.bicep' = {
  name: '${deploymentPrefix}-role-assignments'
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.name
    keyVaultName: keyVault.outputs.name
    deadLetterWriterPrincipalId: eventGridTopic.outputs.principalId
    deadLetterContainerName: containers.deadLetter
    secretReaders: secretReaders
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: '${deploymentPrefix}-function-app'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identity: {
      resourceId: identity.outputs.resourceId
      clientId: identity.outputs.clientId
      principalId: identity.outputs.principalId
    }
    storageAccountName: storage.outputs.name
    deploymentContainerName: containers.deploymentPackage
    applicationInsightsName: monitoring.outputs.name
    secretUris: keyVault.outputs.secretUris
    keyVaultUri: keyVault.outputs.vaultUri
    usageReportCustomers: usageCustomersReady
    scale: scale
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    schedules: schedules
    reportingTimeZone: reportingTimeZone
  }
  // The app reads its storage, secrets and telemetry settings as soon as it starts: grant access first.
  dependsOn: [
    roleAssignments
  ]
}

module usageReportSubscription 'modules/eventSubscription.bicep' = if (deployEventSubscription) {
  name: '${deploymentPrefix}-eventgrid-subscription'
  params: {
    systemTopicName: eventGridTopic.outputs.name
    name: names.usageReportSubscription
    functionAppName: functionApp.outputs.name
    functionName: usageReportFunctionName
    storageAccountName: storage.outputs.name
    containerName: containers.usageReports
    deadLetterContainerName: containers.deadLetter
  }
  // Dead-lettering needs the topic's role on the dead-letter container.
  dependsOn: [
    roleAssignments
  ]
}

// ---------------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------------

@description('Segment batch endpoint: point Segment libraries and scripts here.')
output ingestUrl string = 'https://${functionApp.outputs.defaultHostName}/v1/batch'

@description('Dashboard address.')
output dashboardUrl string = 'https://${functionApp.outputs.defaultHostName}/dashboard'

@description('Name of the function app.')
output functionAppName string = functionApp.outputs.name

@description('Resource id of the function app.')
output functionAppResourceId string = functionApp.outputs.resourceId

@description('Default host name of the function app.')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Name of the Flex Consumption plan.')
output planName string = functionApp.outputs.planName

@description('Name of the user-assigned identity.')
output identityName string = identity.outputs.name

@description('Resource id of the user-assigned identity.')
output identityResourceId string = identity.outputs.resourceId

@description('Client id of the user-assigned identity.')
output identityClientId string = identity.outputs.clientId

@description('Name of the storage account.')
output storageAccountName string = storage.outputs.name

@description('Resource id of the storage account.')
output storageAccountResourceId string = storage.outputs.resourceId

@description('Container that receives usage reports.')
output usageReportsContainerName string = containers.usageReports

@description('Name of the Key Vault.')
output keyVaultName string = keyVault.outputs.name

@description('Resource id of the Key Vault.')
output keyVaultResourceId string = keyVault.outputs.resourceId

@description('Names of the secrets in the Key Vault.')
output secretNames string[] = keyVault.outputs.secretNames

@description('Ids of the usage-report customers configured in the app by this deployment.')
output usageReportCustomerIds string[] = map(usageCustomersReady, customer => customer.id)

@description('Usage-report customers configured by this deployment whose signing secret is being rotated, each with the version of usage-customer-<id>-signing-secret the app also accepts (PreviousSigningSecret). Versions, not values.')
output usageReportSigningSecretRotations { id: string, previousSigningSecretVersion: string }[] = map(
  filter(usageCustomersReady, customer => !empty(customer.?previousSigningSecretVersion ?? '')),
  customer => {
    id: customer.id
    previousSigningSecretVersion: customer.?previousSigningSecretVersion ?? ''
  }
)

@description('Key Vault secrets of configured usage-report customers that do not exist yet (those customers got no app settings): the deploy script creates them and deploys again.')
output usageReportCustomerSecretsMissing string[] = usageCustomerSecretsMissing

@description('Name of the Application Insights component.')
output applicationInsightsName string = monitoring.outputs.name

@description('Resource id of the Application Insights component.')
output applicationInsightsResourceId string = monitoring.outputs.resourceId

@description('Name of the Log Analytics workspace.')
output logAnalyticsName string = monitoring.outputs.logAnalyticsName

@description('Resource id of the Log Analytics workspace.')
output logAnalyticsResourceId string = monitoring.outputs.logAnalyticsResourceId

@description('Name of the Event Grid system topic of the storage account.')
output systemTopicName string = eventGridTopic.outputs.name

@description('Resource id of the Event Grid system topic.')
output systemTopicResourceId string = eventGridTopic.outputs.resourceId

@description('Name of the usage-report event subscription, or empty when it was not deployed.')
output usageReportSubscriptionName string = deployEventSubscription ? usageReportSubscription!.outputs.name : ''
