metadata name = 'Event Grid system topic'
metadata description = 'The storage account\'s system topic, with its own identity to dead-letter undeliverable events (roleAssignments.bicep lets it write to the dead-letter container only).'

import { tagsType } from 'types.bicep'

@description('Required. Name of the system topic.')
param name string

@description('Required. Azure region of the system topic (the storage account\'s).')
param location string

@description('Optional. Tags of the system topic.')
param tags tagsType = {}

@description('Required. Name of the storage account whose events the topic publishes.')
param storageAccountName string

resource storageAccount 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    // Used to dead-letter with Entra ID: the storage account accepts no shared keys.
    type: 'SystemAssigned'
  }
  properties: {
    source: storageAccount.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

@description('Name of the system topic.')
output name string = systemTopic.name

@description('Resource id of the system topic.')
output resourceId string = systemTopic.id

@description('Object id of the system topic\'s identity.')
output principalId string = systemTopic.identity.principalId
