// Small SVG charts for the dashboard: a line chart over days, stacked bars over days, and horizontal bars.
// Every mark carries an SVG <title> with its exact figure (read by screen readers and shown by browsers), and the
// shared tooltip shows the same text on hover. Colours are attributes, not inline styles, so the page's
// Content-Security-Policy needs no 'unsafe-inline'.

const SVG = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#2557d6', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#7c3aed', '#64748b'];

export const formatNumber = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
/**
 * A rate as a percentage with one decimal. Rounding would show a rate just under 1 (0.9995: an installation in
 * two thousand failed) as "100.0%", so 100% is shown only for exactly 1 and anything under it at most "99.9%".
 * The API rounds rates to four decimals, so 29,999 of 30,000 arrives as 1: pass { incomplete: succeeded < started }
 * where the counts are known, and it shows as "99.9%" too.
 */
export const formatPercent = (r, { incomplete = r < 1 } = {}) => {
  if (r === null || r === undefined) {
    return '–';
  }
  const text = (r * 100).toFixed(1);
  return `${incomplete && text === '100.0' ? '99.9' : text}%`;
};

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  if (parent) {
    parent.appendChild(node);
  }
  return node;
}

function titled(node, text) {
  el('title', {}, node).textContent = text;
  node.dataset.tip = text;
  return node;
}

/** A rounded-up axis maximum and its tick step (1, 2 or 5 times a power of ten). */
function niceScale(max, ticks = 5) {
  if (!(max > 0)) {
    return { max: ticks, step: 1 };
  }
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return { max: Math.ceil(max / step) * step, step: Math.max(step, Number.EPSILON) };
}

function svgRoot(width, height, label) {
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
  return svg;
}

function yAxis(svg, scale, box, format) {
  const grid = el('g', { class: 'grid axis' }, svg);
  for (let v = 0; v <= scale.max + scale.step / 2; v += scale.step) {
    const y = box.bottom - (v / scale.max) * (box.bottom - box.top);
    el('line', { x1: box.left, x2: box.right, y1: y, y2: y }, grid);
    el('text', { x: box.left - 6, y: y + 4, 'text-anchor': 'end' }, grid).textContent = format(v);
  }
}

function dayTicks(svg, days, x, box) {
  const axis = el('g', { class: 'axis' }, svg);
  el('line', { class: 'axis-line', x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom }, axis);
  const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor((box.right - box.left) / 80))));
  const shown = days.map((_, i) => i).filter((i) => i % every === 0);
  const last = days.length - 1;
  if (last > 0 && shown[shown.length - 1] !== last && last - shown[shown.length - 1] >= every / 2) {
    shown.push(last);
  }
  // The first tick and every tick in another year than the tick before it carry the year, so a range across
  // New Year reads unambiguously.
  let year = null;
  for (const i of shown) {
    const day = days[i];
    const label = day.slice(0, 4) === year ? day.slice(5) : day;
    year = day.slice(0, 4);
    el('text', { x: x(i), y: box.bottom + 16, 'text-anchor': 'middle' }, axis).textContent = label;
  }
}

export function legend(series) {
  const list = document.createElement('ul');
  list.className = 'legend';
  for (const s of series) {
    const item = document.createElement('li');
    const swatch = el('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true' });
    el('rect', { width: 12, height: 12, rx: 3, fill: s.color }, swatch);
    item.append(swatch, document.createTextNode(s.name));
    list.appendChild(item);
  }
  return list;
}

/**
 * Every chart is drawn in the units of the page: its width is the width of the element it goes into (the page
 * measures it and draws again when it changes), so an 11px label is 11px on a phone as on a wide screen.
 *
 * Lines over consecutive days. series: [{ name, color, values: Map(day -> number) }]; a day without a value is a
 * gap in the line. Each day has a hover band whose title lists every series' figure for that day.
 */
export function lineChart({ days, series, label, format = formatNumber, width = 760, height = 280 }) {
  const box = { left: 56, right: width - 12, top: 12, bottom: height - 28 };
  const svg = svgRoot(width, height, label);
  const max = Math.max(0, ...series.flatMap((s) => [...s.values.values()]));
  const scale = niceScale(max);
  const step = days.length > 1 ? (box.right - box.left) / (days.length - 1) : 0;
  const x = (i) => (days.length > 1 ? box.left + i * step : (box.left + box.right) / 2);
  const y = (v) => box.bottom - (v / scale.max) * (box.bottom - box.top);
  yAxis(svg, scale, box, format);
  dayTicks(svg, days, x, box);

  for (const s of series) {
    let d = '';
    let open = false;
    days.forEach((day, i) => {
      const v = s.values.get(day);
      if (v === undefined) {
        open = false;
        return;
      }
      d += `${open ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2.2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }, svg);
    if (days.length <= 62) {
      days.forEach((day, i) => {
        const v = s.values.get(day);
        if (v !== undefined) {
          titled(el('circle', { class: 'point', cx: x(i), cy: y(v), r: 3, fill: s.color }, svg), `${day} · ${s.name}: ${format(v)}`);
        }
      });
    }
  }

  const bands = el('g', {}, svg);
  days.forEach((day, i) => {
    const present = series.filter((s) => s.values.has(day));
    const text = present.length === 0 ? `${day}: not computed` : `${day}\n${present.map((s) => `${s.name}: ${format(s.values.get(day))}`).join('\n')}`;
    const half = days.length > 1 ? step / 2 : (box.right - box.left) / 2;
    titled(el('rect', { class: 'hover-band', x: x(i) - half, y: box.top, width: half * 2, height: box.bottom - box.top }, bands), text);
  });
  return svg;
}

/** Stacked bars over days. series: [{ name, color, values: Map(day -> number) }]. */
export function stackedBars({ days, series, label, unit = '', width = 760, height = 280 }) {
  const box = { left: 56, right: width - 12, top: 12, bottom: height - 28 };
  const svg = svgRoot(width, height, label);
  const totals = days.map((day) => series.reduce((sum, s) => sum + (s.values.get(day) ?? 0), 0));
  const scale = niceScale(Math.max(0, ...totals));
  const slot = (box.right - box.left) / Math.max(1, days.length);
  const barWidth = Math.max(1, slot * 0.78);
  const x = (i) => box.left + i * slot + slot / 2;
  const h = (v) => (v / scale.max) * (box.bottom - box.top);
  yAxis(svg, scale, box, formatNumber);
  dayTicks(svg, days, x, box);
  days.forEach((day, i) => {
    let top = box.bottom;
    for (const s of series) {
      const v = s.values.get(day) ?? 0;
      if (v <= 0) {
        continue;
      }
      const height = h(v);
      top -= height;
      const share = totals[i] > 0 ? ` (${formatPercent(v / totals[i])})` : '';
      titled(el('rect', { class: 'bar', x: x(i) - barWidth / 2, y: top, width: barWidth, height, fill: s.color }, svg), `${day} · ${s.name}: ${formatNumber(v)}${unit}${share}`);
    }
  });
  return svg;
}

/** A text split at spaces into lines of at most `room` characters (a longer word gets a line of its own). */
function wrapText(text, room) {
  const lines = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

/**
 * Horizontal bars, one row per label, each row a stack of segments: rows: [{ label, segments: [{ name, value,
 * color, tip }], note, title, beyond }], where a segment's tip, when given, replaces "name: value" on hover. A row's
 * total (or its note, with title on hover) is written after the bar, on as many lines as the room after the bar
 * needs. marker: optional { value, name } per row drawn as a vertical tick (an entitlement, say). beyond: a text for
 * a row whose bar is cut at the end of the scale, shown on hover over the "»" drawn at its end. A label longer than
 * labelWidth allows ends in an ellipsis.
 */
export function horizontalBars({ rows, label, format = formatNumber, max: fixedMax, width = 760, noteWidth = 112, labelWidth = Math.min(170, Math.round(width * 0.24)) }) {
  const lineHeight = 13;
  const charWidth = 6.5;
  const box = { left: labelWidth, right: width - noteWidth };
  const max = fixedMax ?? Math.max(0, ...rows.map((r) => Math.max(r.segments.reduce((sum, s) => sum + s.value, 0), r.marker?.value ?? 0)));
  const w = (v) => (max > 0 ? (Math.min(v, max) / max) * (box.right - box.left) : 0);
  // Where each row's note starts: after the bar, or after the marker where the bar ends before it, so the tick never
  // crosses the text. A note too long for the room left is wrapped, and its row grows to hold it.
  const layout = rows.map((row) => {
    const barEnd = box.left + w(row.segments.reduce((sum, s) => sum + s.value, 0));
    const hasMarker = row.marker && row.marker.value !== null && row.marker.value !== undefined;
    const noteX = Math.max(barEnd + (row.beyond ? 14 : 0), hasMarker ? box.left + w(row.marker.value) + 1.25 : 0) + 6;
    const text = row.note ?? format(row.segments.reduce((sum, s) => sum + s.value, 0));
    const lines = wrapText(text, Math.max(8, Math.floor((width - noteX) / charWidth)));
    return { noteX, lines, height: Math.max(28, lines.length * lineHeight + 10) };
  });
  const height = Math.max(28, layout.reduce((sum, l) => sum + l.height, 0)) + 8;
  const svg = svgRoot(width, height, label);
  let y = 4;
  rows.forEach((row, i) => {
    const { noteX, lines, height: rowHeight } = layout[i];
    const middle = y + rowHeight / 2;
    const text = el('text', { class: 'label-text', x: labelWidth - 8, y: middle + 4, 'text-anchor': 'end' }, svg);
    const room = Math.floor(labelWidth / charWidth);
    text.textContent = row.label.length > room ? `${row.label.slice(0, room - 1)}…` : row.label;
    let left = box.left;
    let sum = 0;
    for (const s of row.segments) {
      // A stack that goes past the end of the scale is cut there.
      const width = w(sum + s.value) - w(sum);
      sum += s.value;
      if (width > 0) {
        titled(el('rect', { class: 'bar', x: left, y: middle - 9, width, height: 18, rx: 2, fill: s.color }, svg), `${row.label} · ${s.tip ?? `${s.name}: ${format(s.value)}`}`);
      }
      left += width;
    }
    if (row.beyond) {
      titled(el('text', { class: 'beyond-text', x: left + 2, y: middle + 4 }, svg), `${row.label} · ${row.beyond}`).append('»');
    }
    if (row.marker && row.marker.value !== null && row.marker.value !== undefined) {
      const mx = box.left + w(row.marker.value);
      titled(el('line', { x1: mx, x2: mx, y1: middle - 13, y2: middle + 13, stroke: '#10141c', 'stroke-width': 2.5 }, svg), `${row.label} · ${row.marker.name}: ${format(row.marker.value)}`);
    }
    // A note with a title (why a row has no bar, say) shows the title on hover.
    const noteParent = row.title ? titled(el('g', {}, svg), row.title) : svg;
    const note = el('text', { class: 'value-text', x: noteX, y: middle + 4 - ((lines.length - 1) * lineHeight) / 2 }, noteParent);
    // One tspan per line; each but the last keeps its trailing space, so the text reads as the note did.
    lines.forEach((line, n) => {
      el('tspan', n === 0 ? {} : { x: noteX, dy: lineHeight }, note).textContent = n < lines.length - 1 ? `${line} ` : line;
    });
    y += rowHeight;
  });
  return svg;
}

/**
 * A version string's numeric parts and pre-release identifiers ("v2.0.0-rc.1+build.5": [2, 0, 0] and ["rc", "1"];
 * the build after "+" does not count), or null for what is not a version ("unknown", "other").
 */
function parseVersion(v) {
  const match = /^v?(\d+(?:\.\d+)*)([^+]*)/.exec(v);
  if (!match) {
    return null;
  }
  const suffix = match[2].replace(/^[-._]/, '');
  return { numbers: match[1].split('.').map(Number), pre: suffix === '' ? null : suffix.split(/[.-]/) };
}

/** Pre-release identifiers as semantic versioning orders them: numbers by value and before words, a longer list after its prefix. */
function comparePre(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) {
      continue;
    }
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      return Number(x) - Number(y) || x.localeCompare(y);
    }
    return nx ? -1 : ny ? 1 : x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Orders version strings oldest first: by their numeric parts (1.10.0 after 1.9.2, a missing part counting as 0),
 * then a pre-release before its release (2.0.0-rc.1 before 2.0.0). What is not a version comes after every version,
 * by text.
 */
export function compareVersions(a, b) {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) {
    return pa ? -1 : pb ? 1 : a.localeCompare(b);
  }
  for (let i = 0; i < Math.max(pa.numbers.length, pb.numbers.length); i++) {
    const x = pa.numbers[i] ?? 0;
    const y = pb.numbers[i] ?? 0;
    if (x !== y) {
      return x - y;
    }
  }
  if (pa.pre === null || pb.pre === null) {
    return pa.pre === pb.pre ? 0 : pa.pre === null ? 1 : -1;
  }
  return comparePre(pa.pre, pb.pre);
}

/** Orders version strings newest first; what is not a version still comes after every version, by text. */
export function compareVersionsNewestFirst(a, b) {
  return parseVersion(a) && parseVersion(b) ? compareVersions(b, a) : compareVersions(a, b);
}

/** A table of the chart's numbers, folded under a summary so it is there for screen readers and copying. */
export function numbersTable(caption, header, rows) {
  const details = document.createElement('details');
  details.className = 'numbers';
  const summary = document.createElement('summary');
  // Every chart has one: the caption, read after the visible words, tells them apart for a screen reader.
  const hidden = document.createElement('span');
  hidden.className = 'visually-hidden';
  hidden.textContent = `: ${caption}`;
  summary.append('Numbers as a table', hidden);
  const scroll = document.createElement('div');
  scroll.className = 'scroll';
  const table = document.createElement('table');
  const cap = document.createElement('caption');
  cap.className = 'visually-hidden';
  cap.textContent = caption;
  const head = table.createTHead().insertRow();
  for (const h of header) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    r.forEach((cell, i) => {
      const td = i === 0 ? document.createElement('th') : document.createElement('td');
      if (i === 0) {
        td.scope = 'row';
      }
      td.textContent = cell;
      tr.appendChild(td);
    });
  }
  table.prepend(cap);
  scroll.appendChild(table);
  details.append(summary, scroll);
  return details;
}

/**
 * One tooltip for the page, for any element with a data-tip: it follows a mouse, opens where a finger taps (a tap
 * elsewhere closes it) and under a mark that has keyboard focus. It wraps within the window and is kept inside it.
 */
export function attachTooltip(root, tooltip) {
  const hide = () => {
    tooltip.hidden = true;
  };
  const show = (target, x, y) => {
    tooltip.textContent = target.dataset.tip;
    tooltip.hidden = false;
    const pad = 14;
    const margin = 4;
    const { innerWidth, innerHeight } = window;
    const rect = tooltip.getBoundingClientRect();
    // Right of and below the point; left of or above it where it would leave the window; never past either edge.
    let left = x + pad + rect.width <= innerWidth - margin ? x + pad : x - pad - rect.width;
    let top = y + pad + rect.height <= innerHeight - margin ? y + pad : y - pad - rect.height;
    left = Math.max(margin, Math.min(left, innerWidth - rect.width - margin));
    top = Math.max(margin, Math.min(top, innerHeight - rect.height - margin));
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${top}px`;
  };
  const tipOf = (event) => (event.target instanceof Element ? event.target.closest('[data-tip]') : null);
  const follow = (event) => {
    const target = tipOf(event);
    if (target) {
      show(target, event.clientX, event.clientY);
    } else {
      hide();
    }
  };
  root.addEventListener('pointermove', (event) => {
    if (event.pointerType === 'mouse' || event.pointerType === 'pen') {
      follow(event);
    }
  });
  root.addEventListener('pointerdown', follow);
  root.addEventListener('focusin', (event) => {
    const target = tipOf(event);
    if (target) {
      const rect = target.getBoundingClientRect();
      show(target, rect.left + rect.width / 2, rect.bottom);
    }
  });
  root.addEventListener('focusout', (event) => {
    // Only a mark's own tip closes with its focus: focus leaving a field as a finger taps a mark must not close it.
    if (tipOf(event)) {
      hide();
    }
  });
  // A finger lifted leaves the page as far as pointer events go: the tip it opened stays until the next tap.
  root.addEventListener('pointerleave', (event) => {
    if (event.pointerType !== 'touch') {
      hide();
    }
  });
}
