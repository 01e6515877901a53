metadata name = 'Key Vault'
metadata description = 'The vault holding the app\'s secrets. Access is by Azure RBAC only; deleted secrets and the vault itself stay recoverable.'

import { secretUrisType, tagsType } from 'types.bicep'

@description('Required. Name of the vault (3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Required. Azure region of the vault.')
param location string

@description('Optional. Tags of the vault.')
param tags tagsType = {}

@description('Optional. Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Required. HMAC key that pseudonymizes identifiers (32 characters or more).')
@secure()
@minLength(32)
param pseudonymizationKey string

@description('Required. Write key of the server source.')
@secure()
@minLength(8)
param serverWriteKey string

@description('Required. Write key of the installer source.')
@secure()
@minLength(8)
param installerWriteKey string

@description('Required. Write key of the client source.')
@secure()
@minLength(8)
param clientWriteKey string

@description('Required. Key of the admin and read API.')
@secure()
@minLength(8)
param adminKey string

@description('Optional. Names of secrets that already hold a value to keep. They are not written, so a redeployment does not replace them with new values.')
param secretsToKeep string[] = []

var secretNames = {
  pseudonymizationKey: 'telemetry-pseudonymization-key'
  serverWriteKey: 'telemetry-write-key-server'
  installerWriteKey: 'telemetry-write-key-installer'
  clientWriteKey: 'telemetry-write-key-client'
  adminKey: 'telemetry-admin-key'
}

// Whether this deployment writes each secret: not when it already holds a value to keep.
var writeSecret = toObject(items(secretNames), secret => secret.key, secret => !contains(secretsToKeep, secret.value))

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Data access is granted with role assignments (Key Vault Secrets User), never access policies.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Once on, purge protection cannot be turned off: nobody can destroy a secret before retention ends.
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // The app resolves Key Vault references over the public endpoint (no virtual network here).
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource pseudonymizationKeySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (writeSecret.pseudonymizationKey) {
  parent: vault
  name: secretNames.pseudonymizationKey
  properties: {
    value: pseudonymizationKey
    contentType: 'HMAC key'
  }
}

resource serverWriteKeySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (writeSecret.serverWriteKey) {
  parent: vault
  name: secretNames.serverWriteKey
  properties: {
    value: serverWriteKey
    contentType: 'Segment write key (source: server)'
  }
}

resource installerWriteKeySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (writeSecret.installerWriteKey) {
  parent: vault
  name: secretNames.installerWriteKey
  properties: {
    value: installerWriteKey
    contentType: 'Segment write key (source: installer)'
  }
}

resource clientWriteKeySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (writeSecret.clientWriteKey) {
  parent: vault
  name: secretNames.clientWriteKey
  properties: {
    value: clientWriteKey
    contentType: 'Segment write key (source: client)'
  }
}

resource adminKeySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (writeSecret.adminKey) {
  parent: vault
  name: secretNames.adminKey
  properties: {
    value: adminKey
    contentType: 'admin API key'
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Resource id of the vault.')
output resourceId string = vault.id

@description('URI of the vault, ending with a slash.')
output vaultUri string = vault.properties.vaultUri

@description('Names of the secrets this module manages.')
output secretNames string[] = map(items(secretNames), secret => secret.value)

@description('Version-less URIs of the secrets, valid whether or not this deployment wrote them.')
output secretUris secretUrisType = {
  pseudonymizationKey: '${vault.properties.vaultUri}secrets/${secretNames.pseudonymizationKey}'
  serverWriteKey: '${vault.properties.vaultUri}secrets/${secretNames.serverWriteKey}'
  installerWriteKey: '${vault.properties.vaultUri}secrets/${secretNames.installerWriteKey}'
  clientWriteKey: '${vault.properties.vaultUri}secrets/${secretNames.clientWriteKey}'
  adminKey: '${vault.properties.vaultUri}secrets/${secretNames.adminKey}'
}
