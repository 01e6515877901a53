metadata name = 'Shared types'
metadata description = 'User-defined types shared by main.bicep and its modules.'

@export()
@description('Resource tags: names to text values.')
type tagsType = {
  *: string
}

@export()
@description('How the Flex Consumption app scales.')
type flexScaleType = {
  @description('Required. Memory of each instance, in MB.')
  instanceMemoryMB: 512 | 2048 | 4096

  @description('Required. The most instances the app scales out to.')
  @minValue(40)
  @maxValue(1000)
  maximumInstanceCount: int
}

@export()
@description('NCRONTAB schedules (six fields, seconds first) of the timer functions.')
type timerSchedulesType = {
  @description('Required. The inactivity sweep (TelemetrySweepSchedule).')
  sweep: string

  @description('Required. The daily rollup (TelemetryRollupSchedule).')
  rollup: string

  @description('Required. Raw-event retention (TelemetryRetentionSchedule).')
  retention: string

  @description('Required. The usage-report reconciliation: processes usage-report blobs whose blob event was missed or whose processing stopped half-way (TelemetryReconcileSchedule).')
  reconcile: string
}

@export()
@description('Key Vault secret URIs without a version, so the app always reads the current version.')
type secretUrisType = {
  @description('Required. HMAC key that pseudonymizes identifiers.')
  pseudonymizationKey: string

  @description('Required. Write key of the server source.')
  serverWriteKey: string

  @description('Required. Write key of the installer source.')
  installerWriteKey: string

  @description('Required. Write key of the client source.')
  clientWriteKey: string

  @description('Required. Key of the admin and read API.')
  adminKey: string
}

@export()
@description('A user-assigned managed identity as the modules that use it need it.')
type identityReferenceType = {
  @description('Required. Resource id of the identity.')
  resourceId: string

  @description('Required. Client (application) id of the identity.')
  clientId: string

  @description('Required. Object (principal) id of the identity.')
  principalId: string
}

@export()
@description('A principal that is granted a role.')
type principalReferenceType = {
  @description('Required. Object id of the principal.')
  principalId: string

  @description('Required. Kind of principal.')
  principalType: 'User' | 'Group' | 'ServicePrincipal'
}

@export()
@description('What a usage-report customer purchased of one metric.')
type usageEntitlementType = {
  @description('Required. Metric name, lower case as reports name it (a lowercase letter, then up to 63 lowercase letters, digits, ".", "_" or "-"); the app refuses to start with another.')
  @minLength(1)
  @maxLength(64)
  metric: string

  @description('Required. Units included per calendar month (UTC); usage above it is overage.')
  @minValue(0)
  monthlyQuantity: int
}

@export()
@description('A Self-Managed customer allowed to send usage reports. No secrets: its signing secret and report key live in Key Vault as usage-customer-<id>-signing-secret and usage-customer-<id>-report-key.')
type usageReportCustomerType = {
  @description('Required. Customer id: 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit (reports carry it in customerId).')
  @minLength(1)
  @maxLength(63)
  id: string

  @description('Optional. What the customer purchased, per metric.')
  entitlements: usageEntitlementType[]?

  @description('Optional. Only while the customer\'s signing secret is rotated: the version of usage-customer-<id>-signing-secret that its installations may still sign with (the 32 characters after the last "/" of the secret\'s id). The app then also accepts that version, as PreviousSigningSecret, through a Key Vault reference pinned to it. A version id is no secret. docs/deploy.md, "Rotating a customer\'s signing secret".')
  @minLength(32)
  @maxLength(32)
  previousSigningSecretVersion: string?
}

@export()
@description('A usage-report customer whose two secrets exist in Key Vault, with their secret names.')
type usageReportCustomerSettingsType = {
  @description('Required. Customer id.')
  id: string

  @description('Required. Key Vault secret holding the customer\'s signing secret.')
  signingSecretName: string

  @description('Required. Key Vault secret holding the customer\'s report key.')
  reportKeyName: string

  @description('Optional. While rotating: the version of the signing secret the app also accepts (PreviousSigningSecret).')
  previousSigningSecretVersion: string?

  @description('Required. What the customer purchased, per metric.')
  entitlements: usageEntitlementType[]
}
