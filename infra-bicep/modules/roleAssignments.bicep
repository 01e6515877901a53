metadata name = 'Role assignments'
metadata description = 'Who may do what: the app\'s identity reaches storage data, publishes telemetry and reads secrets; the Event Grid topic dead-letters; optional readers read secrets. Each assignment is named guid(scope, principal, role), so redeployments find the same one.'

import { principalReferenceType } from 'types.bicep'

@description('Required. Object id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Required. Name of the Key Vault.')
param keyVaultName string

@description('Required. Object id of the Event Grid system topic\'s identity, which dead-letters undeliverable events.')
param deadLetterWriterPrincipalId string

@description('Required. Blob container that receives undeliverable events.')
param deadLetterContainerName string

@description('Optional. People or groups who may read the secrets (for example the operator who hands out write keys).')
param secretReaders principalReferenceType[] = []

// Built-in role definitions: their ids are the same in every tenant.
resource storageBlobDataOwner 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
}

resource storageQueueDataContributor 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
}

resource storageTableDataContributor 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource monitoringMetricsPublisher 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource keyVaultSecretsUser 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource storageBlobDataContributor 'Microsoft.Authorization/roleDefinitions@2022-04-01' existing = {
  scope: subscription()
  name: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource deadLetterContainer 'containers' existing = {
      name: deadLetterContainerName
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

// Blob data: the host's leases and timers, the deployment package, usage reports.
resource blobDataOwnerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataOwner.id)
  scope: storageAccount
  properties: {
    roleDefinitionId: storageBlobDataOwner.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Queues: the blob trigger's bookkeeping and poison queue.
resource queueDataContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageQueueDataContributor.id)
  scope: storageAccount
  properties: {
    roleDefinitionId: storageQueueDataContributor.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Tables: everything the app stores (it also creates a missing table).
resource tableDataContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageTableDataContributor.id)
  scope: storageAccount
  properties: {
    roleDefinitionId: storageTableDataContributor.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry: Application Insights accepts only Entra-authenticated senders.
resource metricsPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher.id)
  scope: applicationInsights
  properties: {
    roleDefinitionId: monitoringMetricsPublisher.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Secrets: the platform resolves the app's Key Vault references as this identity.
resource appSecretsUserAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, appPrincipalId, keyVaultSecretsUser.id)
  scope: keyVault
  properties: {
    roleDefinitionId: keyVaultSecretsUser.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Dead-lettering: the system topic writes undeliverable events to one container and can touch no other blob.
resource deadLetterWriterAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(
    storageAccount::blobService::deadLetterContainer.id,
    deadLetterWriterPrincipalId,
    storageBlobDataContributor.id
  )
  scope: storageAccount::blobService::deadLetterContainer
  properties: {
    roleDefinitionId: storageBlobDataContributor.id
    principalId: deadLetterWriterPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource readerSecretsUserAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for reader in secretReaders: {
    name: guid(keyVault.id, reader.principalId, keyVaultSecretsUser.id)
    scope: keyVault
    properties: {
      roleDefinitionId: keyVaultSecretsUser.id
      principalId: reader.principalId
      principalType: reader.principalType
    }
  }
]

@description('Resource ids of the app identity\'s role assignments on the storage account.')
output storageAssignmentIds string[] = [
  blobDataOwnerAssignment.id
  queueDataContributorAssignment.id
  tableDataContributorAssignment.id
]

@description('Resource id of the app identity\'s role assignment on Application Insights.')
output metricsPublisherAssignmentId string = metricsPublisherAssignment.id

@description('Resource id of the app\'s role assignment on the Key Vault.')
output secretsUserAssignmentId string = appSecretsUserAssignment.id
