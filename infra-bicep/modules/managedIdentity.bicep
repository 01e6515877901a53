metadata name = 'Managed identity'
metadata description = 'The user-assigned identity the function app runs as: storage, Key Vault and telemetry all trust it instead of keys.'

import { tagsType } from 'types.bicep'

@description('Required. Name of the identity.')
param name string

@description('Required. Azure region of the identity.')
param location string

@description('Optional. Tags of the identity.')
param tags tagsType = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

@description('Name of the identity.')
output name string = identity.name

@description('Resource id of the identity.')
output resourceId string = identity.id

@description('Client (application) id of the identity.')
output clientId string = identity.properties.clientId

@description('Object (principal) id of the identity.')
output principalId string = identity.properties.principalId
