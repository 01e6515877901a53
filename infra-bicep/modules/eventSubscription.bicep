metadata name = 'Usage-report event subscription'
metadata description = 'Delivers BlobCreated events of the usage-reports container to the function app\'s blob extension webhook (the Event Grid-sourced blob trigger of Flex Consumption), dead-lettering what cannot be delivered.'

@description('Required. Name of the storage account\'s Event Grid system topic.')
param systemTopicName string

@description('Required. Name of the event subscription.')
param name string

@description('Required. Name of the function app.')
param functionAppName string

@description('Required. Name of the blob-triggered function that processes usage reports.')
param functionName string

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Container whose new blobs trigger the function.')
param containerName string

@description('Required. Container that receives undeliverable events.')
param deadLetterContainerName string

@description('Optional. Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Optional. Minutes an event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' existing = {
  name: functionAppName
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

// The blob extension's system key exists once the app runs code with an Event Grid-sourced blob trigger,
// which is why this module is deployed only after the code is published (deployEventSubscription).
var blobsExtensionKey = listKeys('${functionApp.id}/host/default', functionApp.apiVersion).systemKeys.blobs_extension

resource usageReportSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: name
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // The trailing slash keeps "usage-reports-quarantine" (same prefix) out.
      subjectBeginsWith: '/blobServices/default/containers/${containerName}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccount.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

@description('Name of the event subscription.')
output name string = usageReportSubscription.name

@description('Resource id of the event subscription.')
output resourceId string = usageReportSubscription.id
