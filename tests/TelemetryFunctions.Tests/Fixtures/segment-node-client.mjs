// Sends track events to a TelemetryFunctions host with the official Segment Node client (@segment/analytics-node),
// exactly as a product server would, then prints one JSON line summarising what the client reports.
//
//   node segment-node-client.mjs --host http://127.0.0.1:7071 --write-key dev-write-key --count 250
//        [--identity-prefix p]     userIds are p-user-<n>, anonymousIds p-anon-<n>, instanceIds p-instance-<n>
//        [--message-id-prefix m]   messageId m-<i> for event i instead of the ids the client generates
//        [--repeat r]              send the same events r times, flushing between rounds (default 1)
//        [--flush-at n]            events per request (default 20)
//        [--max-retries n]         client retries per request (default 5)
//        [--flush-timeout-ms n]    how long closeAndFlush waits for deliveries (default 30000)
//
// Every option can also be given as an environment variable: SEGMENT_HOST, SEGMENT_WRITE_KEY, SEGMENT_COUNT, ...
// The package is loaded from the repository root's node_modules: the root is TELEMETRY_REPO_ROOT, else the
// working directory.
// Exit code 0 when the client reports every event delivered, 1 when any failed, 2 on bad arguments.

import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';

function option(name, fallback) {
  const flag = `--${name}`;
  const index = process.argv.indexOf(flag);
  if (index >= 0 && index + 1 < process.argv.length) {
    return process.argv[index + 1];
  }
  const variable = 'SEGMENT_' + name.toUpperCase().replaceAll('-', '_');
  return process.env[variable] ?? fallback;
}

function integer(name, fallback) {
  const value = Number.parseInt(option(name, String(fallback)), 10);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a non-negative integer`);
    process.exit(2);
  }
  return value;
}

const host = option('host');
const writeKey = option('write-key');
if (!host || !writeKey) {
  console.error('--host and --write-key are required');
  process.exit(2);
}

const count = integer('count', 10);
const repeat = integer('repeat', 1);
const flushAt = integer('flush-at', 20);
const maxRetries = integer('max-retries', 5);
const flushTimeoutMs = integer('flush-timeout-ms', 30_000);
const identityPrefix = option('identity-prefix', 'node-client');
const messageIdPrefix = option('message-id-prefix');

const root = process.env.TELEMETRY_REPO_ROOT ?? process.cwd();
const require = createRequire(path.join(root, 'package.json'));
const { Analytics } = require('@segment/analytics-node');

const analytics = new Analytics({
  writeKey,
  host,
  path: '/v1/batch',
  flushAt,
  maxRetries,
  flushInterval: 500,
  httpRequestTimeout: 10_000,
});

const summary = {
  sent: 0,
  delivered: 0,
  failed: 0,
  errors: [],
  messageIds: [],
  requests: 0,
  statuses: {},
};

analytics.on('http_request', () => {
  summary.requests++;
});
analytics.on('http_response', (response) => {
  summary.statuses[response.status] = (summary.statuses[response.status] ?? 0) + 1;
});

function track(i) {
  // Half the events come from identified users, half from anonymous ones; a few of each repeat.
  const identity = i % 2 === 0
    ? { userId: `${identityPrefix}-user-${i % 7}` }
    : { anonymousId: `${identityPrefix}-anon-${i % 5}` };
  const event = {
    ...identity,
    event: i % 10 === 0 ? 'Instance Active' : 'Report Opened',
    properties: {
      instanceId: `${identityPrefix}-instance-${i % 3}`,
      version: '1.2.3',
      os: 'ubuntu',
      index: i,
    },
  };
  if (messageIdPrefix) {
    event.messageId = `${messageIdPrefix}-${i}`;
  }

  return new Promise((resolve) => {
    summary.sent++;
    analytics.track(event, (error, ctx) => {
      if (error) {
        summary.failed++;
        summary.errors.push(String(error?.message ?? error));
      } else {
        summary.delivered++;
      }
      if (ctx?.event?.messageId) {
        summary.messageIds.push(ctx.event.messageId);
      }
      resolve();
    });
  });
}

for (let round = 0; round < repeat; round++) {
  const deliveries = [];
  for (let i = 0; i < count; i++) {
    deliveries.push(track(i));
  }
  if (round + 1 < repeat) {
    await analytics.flush();
    await Promise.all(deliveries);
  } else {
    await analytics.closeAndFlush({ timeout: flushTimeoutMs });
    await Promise.all(deliveries);
  }
}

summary.errors = [...new Set(summary.errors)];
console.log(JSON.stringify(summary));
process.exit(summary.failed === 0 && summary.delivered === summary.sent ? 0 : 1);
