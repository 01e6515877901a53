metadata name = 'Monitoring'
metadata description = 'Log Analytics workspace and workspace-based Application Insights that accepts only Entra-authenticated telemetry.'

import { tagsType } from 'types.bicep'

@description('Required. Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Required. Azure region of both resources.')
param location string

@description('Optional. Tags of both resources.')
param tags tagsType = {}

@description('Optional. Days the workspace keeps logs.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Queries and ingestion need Entra ID; the workspace's shared keys are refused.
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // The instrumentation key alone cannot send telemetry: senders authenticate with Entra ID
    // (the app's managed identity, which holds Monitoring Metrics Publisher).
    DisableLocalAuth: true
  }
}

@description('Name of the Application Insights component.')
output name string = applicationInsights.name

@description('Resource id of the Application Insights component.')
output resourceId string = applicationInsights.id

@description('Connection string of the Application Insights component (not a secret: local authentication is disabled).')
output connectionString string = applicationInsights.properties.ConnectionString

@description('Name of the Log Analytics workspace.')
output logAnalyticsName string = workspace.name

@description('Resource id of the Log Analytics workspace.')
output logAnalyticsResourceId string = workspace.id
