// The product dashboard: reads the read API with the admin key (kept in sessionStorage for this tab, sent as the
// x-functions-key header, never in a URL) and draws the figures with charts.js. The range is kept in the URL
// fragment (#from=...&to=...), so a link to a range can be shared without the key.
import {
  DASHES, PALETTE, TEXTURES, attachTooltip, compareVersions, compareVersionsNewestFirst, formatNumber, formatPercent, horizontalBars, legend, lineChart, numbersTable, stackedBars,
} from './charts.js';

const KEY_NAME = 'telemetryfunctions.adminKey';
const MAX_DAYS = 366;
/** The first day the pickers offer: no product sent telemetry before it, and every period compared stays after year 0. */
const MIN_DAY = '2000-01-01';
/** The usage chart's scale ends at twice the entitlement; a row beyond it is cut there and marked. */
const USAGE_SCALE_CAP = 2;
/** Inactive instances' grey: light enough to stand back from the active green, with 3:1 against the card's white. */
const INACTIVE = '#7b8496';
const $ = (id) => document.getElementById(id);

class Unauthorized extends Error {}

class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- days ----------------------------------------------------------------------------------------------------

const toDate = (day) => new Date(`${day}T00:00:00Z`);
const toDay = (date) => date.toISOString().slice(0, 10);
const addDays = (day, n) => {
  const date = toDate(day);
  date.setUTCDate(date.getUTCDate() + n);
  return toDay(date);
};
const dayCount = (from, to) => Math.round((toDate(to) - toDate(from)) / 86400000) + 1;
const daysBetween = (from, to) => Array.from({ length: Math.max(0, dayCount(from, to)) }, (_, i) => addDays(from, i));
const shortDay = (day) => toDate(day).toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
const plural = (n, one, many = `${one}s`) => `${formatNumber(n)} ${n === 1 ? one : many}`;
/** "Nov 1 – Nov 30 2026", or with both years where they differ: "Dec 3 2025 – Dec 2 2026". */
const rangeText = (from, to) => (from.slice(0, 4) === to.slice(0, 4)
  ? `${shortDay(from)} – ${shortDay(to)} ${Number(to.slice(0, 4))}`
  : `${shortDay(from)} ${Number(from.slice(0, 4))} – ${shortDay(to)} ${Number(to.slice(0, 4))}`);

// ---- the API -----------------------------------------------------------------------------------------------

const adminKey = () => sessionStorage.getItem(KEY_NAME);

/**
 * Whether a key can be sent as a header at all: a browser refuses a header with a character outside ISO-8859-1 (a
 * pasted zero-width space, a Cyrillic letter), and keys are printable ASCII, so anything else is a paste gone wrong.
 * A space inside the key is printable ASCII too (a passphrase such as "my admin key 2026"); at its ends it is trimmed.
 */
const isSendableKey = (key) => /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(key);

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) {
      url.searchParams.set(name, value);
    }
  }
  const response = await fetch(url, {
    headers: { 'x-functions-key': adminKey() ?? '', accept: 'application/json' },
    cache: 'no-store',
    credentials: 'same-origin',
    referrerPolicy: 'no-referrer',
  });
  if (response.status === 401) {
    throw new Unauthorized('The admin key was refused.');
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let code = null;
    try {
      const error = (await response.json()).error;
      message = error?.message ?? message;
      code = error?.code ?? null;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message, code);
  }
  return response.json();
}

/**
 * The API's per-version and per-OS counts arrive as JSON objects keyed by names products send ("constructor",
 * "__proto__" and "toString" included). Read as plain objects, such a name would find Object.prototype's member
 * instead of a count, so each day's dictionaries become Maps as they arrive, and only Maps are looked up by name.
 */
function withDayMaps(response) {
  const toMap = (counts) => new Map(Object.entries(counts ?? {}));
  return {
    ...response,
    days: response.days.map((d) => ({ ...d, activeInstancesByVersion: toMap(d.activeInstancesByVersion), activeInstancesByOs: toMap(d.activeInstancesByOs) })),
  };
}

/**
 * Usage per customer, metric and month from GET /api/usage, which takes the same day range as the other reads (the
 * months it touches). A row whose reports add up beyond what can be counted has no figure and a problem instead.
 */
async function loadUsage(from, to) {
  try {
    const body = await api('/api/usage', { from, to });
    return { status: 'ok', rows: body.rows };
  } catch (e) {
    if (e instanceof Unauthorized) {
      throw e;
    }
    if (e instanceof ApiError && e.status === 404) {
      // A deployment without the usage reports' routes.
      return { status: 'unavailable' };
    }
    return { status: 'error', message: e.message };
  }
}

// ---- page state ----------------------------------------------------------------------------------------------

function setState(state) {
  document.body.dataset.state = state;
}

function setStatus(text, isError = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text ?? '') && toDay(toDate(text)) === text;

/** Why a range cannot be shown, or null when it can. */
function rangeProblem(from, to) {
  if (!from || !to) {
    return 'Choose both days.';
  }
  if (!isDay(from) || !isDay(to)) {
    return 'Give both days as YYYY-MM-DD.';
  }
  if (from < MIN_DAY) {
    return `Choose days from ${MIN_DAY} on.`;
  }
  if (from > to) {
    return 'The first day must not be after the last.';
  }
  if (dayCount(from, to) > MAX_DAYS) {
    return `Choose at most ${MAX_DAYS} days.`;
  }
  return null;
}

/** The range in the URL fragment: { from, to }, null for none, or { problem } for one that cannot be shown. */
function readHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const from = params.get('from');
  const to = params.get('to');
  if (from === null && to === null) {
    return null;
  }
  const problem = rangeProblem(from, to);
  return problem ? { problem: linkProblem(from, to, problem) } : { from, to };
}

const linkProblem = (from, to, problem) => `The link's range (from=${from ?? ''}, to=${to ?? ''}) cannot be shown: ${problem}`;

/**
 * The daily figures of the range in the URL fragment, or of the default range with a notice when a link's range
 * cannot be shown: one the page refuses itself, or one the API refuses (a last day in the future, say). The default
 * range is asked for once, without a range, so a refusal of it is an error like any other rather than a loop. A
 * range chosen with the pickers and refused by the API is an error, as the pickers' range stays what was chosen.
 */
async function loadActiveUsers(fromLink) {
  const requested = readHash();
  if (requested === null || requested.problem) {
    return { active: await api('/api/stats/active-users'), notice: requested?.problem ?? null };
  }
  try {
    return { active: await api('/api/stats/active-users', requested), notice: null };
  } catch (e) {
    if (!(fromLink && e instanceof ApiError && e.status === 400 && e.code === 'invalid_range')) {
      throw e;
    }
    return { active: await api('/api/stats/active-users'), notice: linkProblem(requested.from, requested.to, e.message) };
  }
}

function writeHash(from, to) {
  const hash = `#from=${from}&to=${to}`;
  if (window.location.hash !== hash) {
    window.history.replaceState(null, '', hash);
  }
}

function showKeyPanel(message) {
  setState('signed-out');
  $('key-panel').hidden = false;
  $('range-form').hidden = true;
  for (const id of ['headlines', 'charts', 'empty']) {
    $(id).hidden = true;
  }
  setStatus('');
  showKeyError(message);
  $('key-input').focus();
}

/**
 * The sign-in form's error, or none: the alert is announced as it appears, and the field is marked invalid and
 * described by it, so a screen reader reads it again with the field.
 */
function showKeyError(message) {
  const error = $('key-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  const input = $('key-input');
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'key-error');
  } else {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
}

let loading = 0;
/** The range whose figures are on screen, and the data they were drawn from (drawn again when the width changes). */
let shown = null;
let shownData = null;

/** The quick-range button for the range on screen, if any, is pressed. */
function markPreset(from, to, today) {
  const last = addDays(today, -1);
  for (const button of document.querySelectorAll('.presets button')) {
    const days = Number(button.dataset.days);
    button.setAttribute('aria-pressed', String(to === last && from === addDays(last, -(days - 1))));
  }
}

/** Loads the range in the URL fragment: one a link brought (the default), or one chosen on the page. */
async function load({ fromLink = true } = {}) {
  const ticket = ++loading;
  setState('loading');
  $('key-panel').hidden = true;
  $('range-form').hidden = false;
  setStatus('Loading…');
  try {
    // A link whose range cannot be shown gets the default range instead, and says so.
    const { active: answer, notice } = await loadActiveUsers(fromLink);
    const active = withDayMaps(answer);
    const { from, to, today } = active;
    const lastDay = active.days.length > 0 ? active.days[active.days.length - 1].day : to;
    const length = dayCount(from, to);
    // The period before is compared only where it lies within the days the dashboard offers.
    const previousFrom = addDays(from, -length);
    const [installations, previousInstallations, instances, comparison, usage] = await Promise.all([
      api('/api/stats/installations', { from, to }),
      previousFrom >= MIN_DAY ? api('/api/stats/installations', { from: previousFrom, to: addDays(from, -1) }) : null,
      api('/api/stats/instances'),
      api('/api/stats/active-users', { from: addDays(lastDay, -30), to: lastDay }).then(withDayMaps),
      loadUsage(from, to),
    ]);
    if (ticket !== loading) {
      return;
    }
    $('range-from').value = from;
    $('range-to').value = to;
    $('range-from').max = today;
    $('range-to').max = today;
    writeHash(from, to);
    markPreset(from, to, today);
    shown = { from, to };
    shownData = { active, installations, previousInstallations, instances, comparison, usage, lastDay };
    render(shownData);
    const summary = `${rangeText(from, to)} · ${plural(length, 'day')} · days in ${active.reportingTimeZone}. Daily figures appear once the nightly rollup has counted the day.`;
    setStatus(notice ? `${notice} Showing ${summary}` : summary, notice !== null);
    $('as-of').textContent = `Instances counted at ${new Date(instances.asOf).toLocaleString('en-US')}`;
    setState('ready');
  } catch (e) {
    if (ticket !== loading) {
      return;
    }
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(KEY_NAME);
      showKeyPanel('That key was refused. Use the admin key (x-functions-key), not a write key.');
      return;
    }
    // The figures on screen belong to the range loaded before, not the one in the pickers and the URL: hide them
    // rather than let them stand for a range they are not.
    for (const id of ['headlines', 'charts', 'empty']) {
      $(id).hidden = true;
    }
    shown = null;
    shownData = null;
    $('as-of').textContent = '';
    setState('error');
    setStatus(e instanceof ApiError ? `The API answered: ${e.message}` : `The API could not be reached: ${e.message}`, true);
  }
}

// ---- rendering -----------------------------------------------------------------------------------------------

/**
 * Whether nothing has been sent yet: no instance known, and every counted day of the range (the rollup writes a
 * row of zeros for a day without events) has no user, instance or installation, and no usage report covers it.
 */
function isNothingYet({ active, installations, instances, usage }) {
  const t = installations.totals;
  return instances.total === 0
    && active.days.every((d) => d.dau === 0 && d.wau === 0 && d.mau === 0 && d.activeInstances === 0)
    && t.started === 0 && t.succeeded === 0 && t.failed === 0 && t.supportRequests === 0
    && !(usage.status === 'ok' && usage.rows.length > 0);
}

function render(data) {
  const nothingYet = isNothingYet(data);
  renderEmpty(data, nothingYet);
  $('headlines').hidden = nothingYet;
  $('charts').hidden = nothingYet;
  if (nothingYet) {
    return;
  }
  renderHeadlines(data);
  renderActiveUsers(data);
  renderInstances(data);
  renderVersions(data);
  renderFunnel(data);
  renderSuccessByOs(data);
  renderUsage(data);
}

function renderEmpty({ active, instances }, nothingYet) {
  const empty = $('empty');
  const show = nothingYet || active.days.length === 0;
  empty.hidden = !show;
  if (!show) {
    return;
  }
  const origin = window.location.origin;
  const onlyToday = active.from === active.today && active.to === active.today;
  empty.querySelector('h2').textContent = nothingYet
    ? 'No telemetry yet'
    : onlyToday
      ? `Today's figures appear after the day ends and the nightly rollup counts it (${plural(instances.total, 'instance')} known now)`
      : `Events are arriving (${plural(instances.total, 'instance')} known), but no day in this range has been counted yet`;
  $('empty-zone').textContent = active.reportingTimeZone;
  $('empty-send').textContent = [
    `curl -u YOUR_WRITE_KEY: -H 'Content-Type: application/json' \\`,
    `  -d '{"type":"track","event":"Instance Active","userId":"server-1","properties":{"instanceId":"my-first-instance","version":"1.0.0","os":"linux"}}' \\`,
    `  ${origin}/v1/track`,
  ].join('\n');
  const lastComplete = addDays(active.today, -1);
  $('empty-rollup').textContent = [
    `curl -X POST -H 'x-functions-key: YOUR_ADMIN_KEY' \\`,
    `  '${origin}/api/admin/rollup?from=${addDays(lastComplete, -6)}&to=${lastComplete}'`,
  ].join('\n');
}

function change(current, previous, { against, missing = 'this day', percent = true, points = false }) {
  if (current === null || current === undefined) {
    return { text: `no figure for ${missing} yet`, direction: '' };
  }
  if (previous === null || previous === undefined) {
    return { text: `no figure for ${against} to compare`, direction: '' };
  }
  const delta = current - previous;
  const arrow = delta > 0 ? '▲' : delta < 0 ? '▼' : '■';
  const direction = delta > 0 ? 'up' : delta < 0 ? 'down' : '';
  if (points) {
    return { text: `${arrow} ${(Math.abs(delta) * 100).toFixed(1)} pts vs ${against}`, direction };
  }
  const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
  const share = percent && previous > 0 ? ` (${sign}${(Math.abs(delta / previous) * 100).toFixed(1)}%)` : '';
  return { text: `${arrow} ${sign}${formatNumber(Math.abs(delta))}${share} vs ${against}`, direction };
}

function figure(name, label, value, display, changeInfo, detail) {
  const card = document.createElement('div');
  card.className = 'figure';
  card.dataset.figure = name;
  const l = document.createElement('div');
  l.className = 'label';
  l.textContent = label;
  const v = document.createElement('div');
  v.className = 'value';
  v.dataset.value = value === null || value === undefined ? '' : String(value);
  v.textContent = display;
  const c = document.createElement('div');
  c.className = `change ${changeInfo.direction}`;
  c.textContent = changeInfo.text;
  card.append(l, v, c);
  if (detail) {
    const d = document.createElement('div');
    d.className = 'change';
    d.textContent = detail;
    card.appendChild(d);
  }
  return card;
}

function renderHeadlines({ active, installations, previousInstallations, instances, comparison, lastDay }) {
  const byDay = new Map(comparison.days.map((d) => [d.day, d]));
  const today = byDay.get(lastDay) ?? active.days.find((d) => d.day === lastDay);
  const weekAgo = byDay.get(addDays(lastDay, -7));
  const monthAgo = byDay.get(addDays(lastDay, -30));
  const on = shortDay(lastDay);
  const headlines = $('headlines');
  headlines.replaceChildren(
    figure('dau', `DAU · ${on}`, today?.dau, formatNumber(today?.dau), change(today?.dau, weekAgo?.dau, { against: shortDay(addDays(lastDay, -7)), missing: on })),
    figure('wau', `WAU · week to ${on}`, today?.wau, formatNumber(today?.wau), change(today?.wau, weekAgo?.wau, { against: 'the week before', missing: `the week to ${on}` })),
    figure('mau', `MAU · 30 days to ${on}`, today?.mau, formatNumber(today?.mau), change(today?.mau, monthAgo?.mau, { against: 'the 30 days before', missing: `the 30 days to ${on}` })),
    figure(
      'active-instances',
      'Active instances · now',
      instances.active,
      formatNumber(instances.active),
      { text: `+${formatNumber(instances.newLast7Days)} new, ${formatNumber(instances.goneInactiveLast7Days)} went inactive in 7 days`, direction: '' },
      `${formatNumber(instances.inactive)} inactive of ${formatNumber(instances.total)}`),
    figure(
      'success-rate',
      'Installation success · range',
      installations.totals.successRate,
      formatPercent(installations.totals.successRate, { incomplete: installations.totals.succeeded < installations.totals.started }),
      change(installations.totals.successRate, previousInstallations?.totals.successRate, { against: 'the period before', missing: 'this range', points: true }),
      `${formatNumber(installations.totals.succeeded)} of ${formatNumber(installations.totals.started)} started`),
  );
}

function section(id) {
  const root = $(id).querySelector('.chart');
  root.replaceChildren();
  root.dataset.width = String(root.clientWidth);
  return root;
}

/** The width to draw a chart at: its container's, so the chart is drawn at the size it is shown. */
const widthOf = (root) => Math.max(240, root.clientWidth || 760);

function emptyChart(root, text) {
  const p = document.createElement('p');
  p.className = 'chart-empty';
  p.textContent = text;
  root.appendChild(p);
}

function renderActiveUsers({ active }) {
  const root = section('chart-active-users');
  if (active.days.length === 0) {
    emptyChart(root, 'No day in this range has been counted yet.');
    return;
  }
  const days = daysBetween(active.from, active.to);
  const series = [
    { name: 'DAU', key: 'dau', color: PALETTE[0], dash: DASHES[0] },
    { name: 'WAU', key: 'wau', color: PALETTE[1], dash: DASHES[1] },
    { name: 'MAU', key: 'mau', color: PALETTE[2], dash: DASHES[2] },
  ].map((s) => ({ ...s, values: new Map(active.days.map((d) => [d.day, d[s.key]])) }));
  root.append(
    legend(series),
    lineChart({ days, series, label: `Daily, weekly and monthly active users from ${active.from} to ${active.to}`, width: widthOf(root) }),
    numbersTable('Active users per day', ['Day', 'DAU', 'WAU', 'MAU', 'Active instances'], active.days.map((d) => [d.day, formatNumber(d.dau), formatNumber(d.wau), formatNumber(d.mau), formatNumber(d.activeInstances)])),
  );
}

function topWithOther(groups, count) {
  const top = groups.slice(0, count);
  const rest = groups.slice(count);
  if (rest.length > 0) {
    top.push({ value: 'other', active: rest.reduce((s, g) => s + g.active, 0), inactive: rest.reduce((s, g) => s + g.inactive, 0), total: rest.reduce((s, g) => s + g.total, 0) });
  }
  return top;
}

/** A silence in minutes as the note under the instances chart says it: "6½ hours", "2 hours", "45 minutes", "1 hour 20 minutes". */
function formatSilence(minutes) {
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (rest === 0) return `${hours} hour${hours === 1 ? '' : 's'}`;
  if (rest === 30) return `${hours}½ hours`;
  return `${hours} hour${hours === 1 ? '' : 's'} ${rest} minute${rest === 1 ? '' : 's'}`;
}

function renderInstances({ instances }) {
  const root = section('chart-instances');
  if (Number.isInteger(instances.inactiveAfterMinutes) && instances.inactiveAfterMinutes > 0) {
    document.getElementById('inactive-after').textContent = formatSilence(instances.inactiveAfterMinutes);
  }
  if (instances.total === 0) {
    emptyChart(root, 'No instance has been seen yet. Instances are counted from events that carry properties.instanceId (a heartbeat every few hours keeps one active).');
    return;
  }
  const series = [{ name: 'Active', color: PALETTE[1] }, { name: 'Inactive', color: INACTIVE }];
  const bars = (groups) => groups.map((g) => ({
    label: g.value,
    segments: [{ name: 'active', value: g.active, color: series[0].color }, { name: 'inactive', value: g.inactive, color: series[1].color }],
    note: `${formatNumber(g.active)} of ${formatNumber(g.total)}`,
  }));
  const heading = (text) => {
    const h = document.createElement('h3');
    h.className = 'chart-heading';
    h.textContent = text;
    return h;
  };
  const max = instances.total;
  const table = [
    ['All instances', instances.active, instances.inactive, instances.total],
    ...instances.byVersion.map((g) => [`Version ${g.value}`, g.active, g.inactive, g.total]),
    ...instances.byOs.map((g) => [`OS ${g.value}`, g.active, g.inactive, g.total]),
  ].map(([label, ...n]) => [label, ...n.map(formatNumber)]);
  root.append(
    legend(series),
    horizontalBars({ rows: bars([{ value: 'All instances', active: instances.active, inactive: instances.inactive, total: instances.total }]), label: `${instances.active} of ${instances.total} instances active`, max, width: widthOf(root) }),
    heading('By version'),
    horizontalBars({ rows: bars(topWithOther([...instances.byVersion].sort((a, b) => compareVersionsNewestFirst(a.value, b.value)), 6)), label: 'Active and inactive instances by version', max, width: widthOf(root) }),
    heading('By OS'),
    horizontalBars({ rows: bars(topWithOther(instances.byOs, 5)), label: 'Active and inactive instances by OS', max, width: widthOf(root) }),
    numbersTable('Instances now by version and OS', ['Instances', 'Active', 'Inactive', 'Total'], table),
  );
}

function renderVersions({ active }) {
  const root = section('chart-versions');
  const totals = new Map();
  for (const d of active.days) {
    for (const [version, n] of d.activeInstancesByVersion) {
      totals.set(version, (totals.get(version) ?? 0) + n);
    }
  }
  if (totals.size === 0) {
    emptyChart(root, 'No instance was active in this range. Versions come from properties.version (or context.app.version) on events with an instanceId.');
    return;
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([v]) => v);
  const shown = ranked.slice(0, 6).sort(compareVersions);
  const hasOther = ranked.length > shown.length;
  const names = hasOther ? [...shown, 'other versions'] : shown;
  const series = names.map((name, i) => ({
    name,
    color: i < shown.length ? PALETTE[i] : PALETTE[PALETTE.length - 1],
    texture: TEXTURES[i % TEXTURES.length],
    values: new Map(active.days.map((d) => [
      d.day,
      i < shown.length
        ? (d.activeInstancesByVersion.get(name) ?? 0)
        : [...d.activeInstancesByVersion].filter(([v]) => !shown.includes(v)).reduce((s, [, n]) => s + n, 0),
    ])),
  }));
  root.append(
    legend(series),
    stackedBars({ days: daysBetween(active.from, active.to), series, label: 'Active instances per day by version', unit: (n) => (n === 1 ? ' instance' : ' instances'), width: widthOf(root), height: 300 }),
    numbersTable('Active instances per day by version', ['Day', ...names], active.days.map((d) => [d.day, ...series.map((s) => formatNumber(s.values.get(d.day) ?? 0))])),
  );
}

function renderFunnel({ installations }) {
  const root = section('chart-funnel');
  const t = installations.totals;
  if (t.started === 0 && t.succeeded === 0 && t.failed === 0 && t.supportRequests === 0) {
    emptyChart(root, 'No installation events in this range. Installers send "Installation Started", then "Installation Success" or "Installation Errors", with an anonymousId per installation.');
    return;
  }
  const share = (n) => (t.started > 0 ? ` (${formatPercent(n / t.started)})` : '');
  const steps = [
    ['Started', t.started, PALETTE[0]],
    ['Succeeded', t.succeeded, PALETTE[1]],
    ['Failed', t.failed, '#dc2626'],
    ['Support requests', t.supportRequests, PALETTE[3]],
  ];
  root.append(
    horizontalBars({
      rows: steps.map(([label, n, color]) => ({ label, segments: [{ name: label.toLowerCase(), value: n, color }], note: `${formatNumber(n)}${label === 'Started' ? '' : share(n)}` })),
      label: `Installation funnel: ${t.started} started, ${t.succeeded} succeeded, ${t.failed} failed`,
      width: widthOf(root),
    }),
    numbersTable('Installation funnel', ['Step', 'Installations', 'Share of started'], steps.map(([label, n]) => [label, formatNumber(n), t.started > 0 ? formatPercent(n / t.started) : '–'])),
  );
}

function renderSuccessByOs({ installations }) {
  const root = section('chart-success-os');
  const groups = installations.byOs.filter((g) => g.started > 0);
  if (groups.length === 0) {
    emptyChart(root, 'No installation started in this range. The OS comes from properties.os (or context.os.name).');
    return;
  }
  root.append(
    horizontalBars({
      rows: groups.map((g) => ({
        label: g.value,
        segments: [{
          name: 'success rate',
          value: Math.min(1, g.successRate ?? 0),
          color: (g.successRate ?? 0) >= 0.9 ? PALETTE[1] : (g.successRate ?? 0) >= 0.7 ? '#d97706' : '#dc2626',
          tip: `success rate: ${formatPercent(g.successRate, { incomplete: g.succeeded < g.started })}`,
        }],
        note: `${formatPercent(g.successRate, { incomplete: g.succeeded < g.started })} (${formatNumber(g.succeeded)} of ${formatNumber(g.started)})`,
      })),
      label: 'Installation success rate by OS',
      format: formatPercent,
      max: 1,
      width: widthOf(root),
    }),
    numbersTable('Installations by OS', ['OS', 'Started', 'Succeeded', 'Failed', 'Success rate'], installations.byOs.map((g) => [g.value, formatNumber(g.started), formatNumber(g.succeeded), formatNumber(g.failed), formatPercent(g.successRate, { incomplete: g.succeeded < g.started })])),
  );
}

/**
 * A usage figure. Usage is counted in 64 bits, but JSON.parse reads numbers as doubles, which hold integers exactly
 * only up to Number.MAX_SAFE_INTEGER: a larger figure arrives altered, so it is shown as what is certain of it (at
 * least 2^53), flagged, rather than as a number the API did not send.
 */
function formatCount(n) {
  return typeof n === 'number' && Number.isFinite(n) && Math.abs(n) > Number.MAX_SAFE_INTEGER
    ? `${n < 0 ? '≤ −' : '≥ '}${formatNumber(Number.MAX_SAFE_INTEGER + 1)} (too large to show exactly)`
    : formatNumber(n);
}

function renderUsage({ usage }) {
  const root = section('chart-usage');
  if (usage.status === 'unavailable') {
    emptyChart(root, 'This deployment does not serve usage reports (GET /api/usage is not one of its routes), so there is no usage to show.');
    return;
  }
  if (usage.status === 'error') {
    emptyChart(root, `Usage could not be read: ${usage.message}`);
    return;
  }
  if (usage.rows.length === 0) {
    emptyChart(root, 'No usage report covers this range yet. Self-Managed customers upload signed usage reports (POST /v1/usage-reports); processed reports appear here with their entitlements.');
    return;
  }
  const latest = new Map();
  for (const r of usage.rows) {
    const key = `${r.customer}\u0000${r.metric}`;
    if (!latest.has(key) || latest.get(key).month < r.month) {
      latest.set(key, r);
    }
  }
  // Metrics differ by orders of magnitude, so each row is drawn against its own entitlement (the tick at 100%).
  const rows = [...latest.values()].sort((a, b) => a.customer.localeCompare(b.customer) || a.metric.localeCompare(b.metric)).map((r) => {
    const label = `${r.customer} · ${r.metric}`;
    if (r.reported === null) {
      // The month's reports add up beyond what can be counted: no bar, and the API's reason in the tooltip.
      return { label, segments: [], marker: null, note: `${r.month}: too large to count`, title: r.problem };
    }
    const entitled = r.entitlement !== null;
    const over = r.overage ?? 0;
    const note = entitled ? `${formatCount(r.reported)} of ${formatCount(r.entitlement)}${over > 0 ? ` (+${formatCount(over)})` : ''}` : `${formatCount(r.reported)} (no entitlement)`;
    if (entitled && r.entitlement === 0) {
      // Nothing purchased: all of it is overage, and there is no share of an entitlement to draw it against, so the
      // bar spans the chart (its width is set below, once the widest row is known), with the tick at 0.
      const text = `${r.month}: ${formatCount(over)} over an entitlement of 0`;
      return { label, segments: [{ name: text, value: 0, color: '#dc2626', tip: text, spans: over > 0 }], marker: { name: 'entitlement 0', value: 0 }, note };
    }
    const share = entitled ? r.reported / r.entitlement : 0;
    return {
      label,
      beyond: share > USAGE_SCALE_CAP ? `${r.month}: ${formatCount(r.reported)} of ${formatCount(r.entitlement)}, ${formatPercent(share)} of the entitlement (beyond the chart's ${USAGE_SCALE_CAP * 100}% scale)` : undefined,
      segments: [
        { name: `${r.month}: ${formatCount(Math.min(r.reported, entitled ? r.entitlement : r.reported))} within entitlement`, value: Math.min(share, 1), color: PALETTE[0] },
        { name: `${r.month}: ${formatCount(over)} over entitlement`, value: Math.max(0, share - 1), color: '#dc2626' },
      ],
      marker: entitled ? { name: `entitlement ${formatCount(r.entitlement)}`, value: 1 } : null,
      note,
    };
  });
  // One customer far over its entitlement would flatten every other row: the scale ends at USAGE_SCALE_CAP.
  const max = Math.min(USAGE_SCALE_CAP, Math.max(1, ...rows.map((r) => r.segments.reduce((sum, segment) => sum + segment.value, 0))));
  for (const segment of rows.flatMap((r) => r.segments).filter((x) => x.spans)) {
    segment.value = max;
  }
  root.append(
    legend([{ name: 'Reported, within entitlement', color: PALETTE[0] }, { name: 'Overage', color: '#dc2626' }, { name: 'Entitlement (tick)', color: '#10141c' }]),
    // "customer · metric" labels are long: room for about 33 characters where the chart is wide enough.
    horizontalBars({ rows, label: 'Usage against entitlement per customer and metric', format: (v) => formatPercent(v), max, width: widthOf(root), noteWidth: Math.min(210, Math.round(widthOf(root) * 0.36)), labelWidth: Math.min(220, Math.round(widthOf(root) * 0.3)) }),
    numbersTable('Usage per customer, metric and month', ['Customer', 'Metric', 'Month', 'Reported', 'Entitlement', 'Overage', 'Problem'], usage.rows.map((r) => [r.customer, r.metric, r.month, formatCount(r.reported), formatCount(r.entitlement), formatCount(r.overage), r.problem ?? ''])),
  );
}

// ---- wiring --------------------------------------------------------------------------------------------------

function applyRange(from, to) {
  const problem = rangeProblem(from, to);
  if (problem) {
    // The figures on screen stay, and so the pickers go back to their range rather than stand over them with another.
    if (shown) {
      $('range-from').value = shown.from;
      $('range-to').value = shown.to;
      setStatus(`${problem} Still showing ${rangeText(shown.from, shown.to)}.`, true);
    } else {
      setStatus(problem, true);
    }
    return;
  }
  window.history.replaceState(null, '', `#from=${from}&to=${to}`);
  load({ fromLink: false });
}

/** Which chart's mark has the keyboard's focus, by their places on the page, or null. */
function focusedMark() {
  const mark = document.activeElement?.closest?.('#charts [data-key-mark]');
  if (!mark) {
    return null;
  }
  const svg = mark.closest('svg');
  return { chart: [...document.querySelectorAll('#charts svg[aria-roledescription=chart]')].indexOf(svg), mark: [...svg.querySelectorAll('[data-key-mark]')].indexOf(mark) };
}

/** Draws the charts again at their containers' new width once a resize has settled. */
function redrawOnResize() {
  let timer = 0;
  const observer = new ResizeObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const charts = [...document.querySelectorAll('#charts .chart')];
      if (!shownData || $('charts').hidden || charts.every((c) => c.dataset.width === String(c.clientWidth))) {
        return;
      }
      // A table someone opened stays open, and a mark with the keyboard's focus keeps it in the chart drawn again.
      const open = charts.map((c) => c.querySelector('details')?.open ?? false);
      const focused = focusedMark();
      render(shownData);
      charts.forEach((c, i) => {
        const details = c.querySelector('details');
        if (details) {
          details.open = open[i];
        }
      });
      if (focused) {
        const marks = document.querySelectorAll('#charts svg[aria-roledescription=chart]')[focused.chart]?.querySelectorAll('[data-key-mark]') ?? [];
        marks[Math.min(focused.mark, marks.length - 1)]?.focus();
      }
    }, 150);
  });
  observer.observe($('charts'));
}

function start() {
  attachTooltip(document.body, $('tooltip'));
  redrawOnResize();
  $('subtitle').textContent = window.location.host;
  $('range-from').min = MIN_DAY;
  $('range-to').min = MIN_DAY;

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key-input').value.trim();
    if (key.length === 0) {
      showKeyError('Enter the admin key.');
      $('key-input').focus();
      return;
    }
    if (!isSendableKey(key)) {
      showKeyError('That key holds a character no key has (an invisible space or a letter outside A–Z, say, picked up when it was copied). Paste the admin key again.');
      $('key-input').focus();
      return;
    }
    showKeyError(null);
    sessionStorage.setItem(KEY_NAME, key);
    $('key-input').value = '';
    load();
    // The sign-in form is gone: the range form takes the focus.
    $('range-from').focus();
  });

  $('range-form').addEventListener('submit', (event) => {
    event.preventDefault();
    applyRange($('range-from').value, $('range-to').value);
  });

  for (const button of document.querySelectorAll('.presets button')) {
    button.addEventListener('click', () => {
      const today = $('range-to').max || toDay(new Date());
      const to = addDays(today, -1);
      applyRange(addDays(to, -(Number(button.dataset.days) - 1)), to);
    });
  }

  $('sign-out').addEventListener('click', () => {
    // A load still in progress must not show its figures next to the sign-in form when it finishes.
    loading++;
    sessionStorage.removeItem(KEY_NAME);
    showKeyPanel();
  });

  window.addEventListener('hashchange', () => {
    if (adminKey()) {
      load();
    }
  });

  if (adminKey() && !isSendableKey(adminKey())) {
    sessionStorage.removeItem(KEY_NAME);
  }
  if (adminKey()) {
    load();
  } else {
    showKeyPanel();
  }
}

start();
