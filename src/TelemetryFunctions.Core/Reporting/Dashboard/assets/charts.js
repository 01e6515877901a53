// Small SVG charts for the dashboard: a line chart over days, stacked bars over days, and horizontal bars.
// Every mark carries an SVG <title> with its exact figure (read by screen readers and shown by browsers), and the
// shared tooltip shows the same text on hover. Each chart is one stop of the Tab key: the arrow keys move the focus
// between its marks (a roving tabindex), each named by its figure and showing the same tooltip, and Escape hides the
// tooltip. Colours are attributes, not inline styles, so the page's Content-Security-Policy needs no 'unsafe-inline'.

const SVG = 'http://www.w3.org/2000/svg';
/** Series colours: each has a contrast of at least 3:1 with the white of a card, as a graphical object needs. */
export const PALETTE = ['#2557d6', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#7c3aed', '#64748b'];
/** The line chart's series differ by their dashes too, so no series is told apart by its colour alone. */
export const DASHES = ['', '8 4', '2 4'];
/**
 * Stacked bars' series differ by a white texture over their colour too (none, stripes leaning right, dots, stripes
 * leaning left, a grid, crosses, horizontal lines), so no segment is told from its neighbour by colour alone.
 */
export const TEXTURES = ['', 'stripes', 'dots', 'back-stripes', 'grid', 'crosses', 'lines'];

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

let patterns = 0;

/**
 * The fill of a mark in `color` with `texture` (one of TEXTURES) drawn over it in white: the colour itself for no
 * texture, otherwise a pattern defined in the svg, under an id no other drawing on the page uses.
 */
function textured(svg, color, texture) {
  if (!texture) {
    return color;
  }
  patterns += 1;
  const id = `texture-${patterns}`;
  let defs = svg.querySelector('defs');
  if (!defs) {
    defs = el('defs');
    svg.prepend(defs);
  }
  const turn = { stripes: 45, 'back-stripes': -45, crosses: 45 }[texture] ?? 0;
  const pattern = el('pattern', { id, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: `rotate(${turn})` }, defs);
  el('rect', { width: 6, height: 6, fill: color }, pattern);
  const ink = { stroke: '#ffffff', 'stroke-width': 1.5 };
  if (texture === 'dots') {
    el('circle', { cx: 3, cy: 3, r: 1.3, fill: '#ffffff' }, pattern);
  }
  if (texture === 'stripes' || texture === 'back-stripes' || texture === 'grid' || texture === 'crosses') {
    el('line', { x1: 3, y1: 0, x2: 3, y2: 6, ...ink }, pattern);
  }
  if (texture === 'lines' || texture === 'grid' || texture === 'crosses') {
    el('line', { x1: 0, y1: 3, x2: 6, y2: 3, ...ink }, pattern);
  }
  return `url(#${id})`;
}

function titled(node, text) {
  el('title', {}, node).textContent = text;
  node.dataset.tip = text;
  return node;
}

/** A mark the keyboard reaches: named by its figure (its tip, lines joined), in the order it was drawn. */
function keyed(node) {
  node.dataset.keyMark = '';
  node.setAttribute('role', 'img');
  node.setAttribute('aria-label', node.dataset.tip.replaceAll('\n', ', '));
  node.setAttribute('tabindex', '-1');
  return node;
}

/**
 * A chart is one stop of the Tab key: its first mark (or the one last moved to) has tabindex 0, every other -1.
 * Left and Up move to the mark before, Right and Down to the mark after, Home and End to the first and the last.
 */
function rovingFocus(svg) {
  const marks = [...svg.querySelectorAll('[data-key-mark]')];
  if (marks.length === 0) {
    return svg;
  }
  marks[0].setAttribute('tabindex', '0');
  el('desc', {}, svg).textContent = 'Arrow keys move between the figures, Home and End to the first and the last; Escape hides the tip.';
  // Focus listeners on the marks, not on the drawing: Chromium makes an SVG element with one a stop of the Tab key.
  for (const mark of marks) {
    mark.addEventListener('focus', () => {
      for (const other of marks) {
        other.setAttribute('tabindex', other === mark ? '0' : '-1');
      }
    });
  }
  svg.addEventListener('keydown', (event) => {
    const at = marks.indexOf(event.target);
    if (at < 0 || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    const next = {
      ArrowLeft: at - 1, ArrowUp: at - 1, ArrowRight: at + 1, ArrowDown: at + 1, Home: 0, End: marks.length - 1,
    }[event.key];
    if (next === undefined) {
      return;
    }
    event.preventDefault();
    marks[Math.max(0, Math.min(next, marks.length - 1))].focus();
  });
  return svg;
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

/**
 * A chart's drawing: a group named by its label, announced as a chart, whose marks are named by their figures (a
 * role of img would hide them from a screen reader). Axes are left out of what a screen reader reads: the marks say
 * their figures, and the table under the chart holds them all.
 */
function svgRoot(width, height, label) {
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-roledescription': 'chart', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
  return svg;
}

function yAxis(svg, scale, box, format) {
  const grid = el('g', { class: 'grid axis', 'aria-hidden': 'true' }, svg);
  for (let v = 0; v <= scale.max + scale.step / 2; v += scale.step) {
    const y = box.bottom - (v / scale.max) * (box.bottom - box.top);
    el('line', { x1: box.left, x2: box.right, y1: y, y2: y }, grid);
    el('text', { x: box.left - 6, y: y + 4, 'text-anchor': 'end' }, grid).textContent = format(v);
  }
}

function dayTicks(svg, days, x, box) {
  const axis = el('g', { class: 'axis', 'aria-hidden': 'true' }, svg);
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

/**
 * The series' names with their colours, in the order they are drawn (stacked bars from the bottom up). A series
 * with a dash (a line chart's) shows a piece of its line, dashes included, rather than a square; a series with a
 * texture (stacked bars') shows its square textured as its segments are.
 */
export function legend(series) {
  const list = document.createElement('ul');
  list.className = 'legend';
  for (const s of series) {
    const item = document.createElement('li');
    if (s.dash === undefined) {
      const swatch = el('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true' });
      el('rect', { width: 12, height: 12, rx: 3, fill: textured(swatch, s.color, s.texture) }, swatch);
      item.append(swatch);
    } else {
      const swatch = el('svg', { class: 'line-swatch', width: 28, height: 12, viewBox: '0 0 28 12', 'aria-hidden': 'true' });
      el('line', { x1: 1, x2: 27, y1: 6, y2: 6, stroke: s.color, 'stroke-width': 2.2, 'stroke-linecap': 'round', 'stroke-dasharray': s.dash || 'none' }, swatch);
      item.append(swatch);
    }
    item.append(s.name);
    list.appendChild(item);
  }
  return list;
}

/**
 * Every chart is drawn in the units of the page: its width is the width of the element it goes into (the page
 * measures it and draws again when it changes), so an 11px label is 11px on a phone as on a wide screen.
 *
 * Lines over consecutive days. series: [{ name, color, values: Map(day -> number) }]; a day without a value is a
 * gap in the line; dash: its stroke-dasharray (DASHES by its place when not given). Each day has a hover band whose
 * title lists every series' figure for that day; the arrow keys move between the days' bands.
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

  series.forEach((s, n) => {
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
    const dash = s.dash ?? DASHES[n % DASHES.length];
    el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2.2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'stroke-dasharray': dash || 'none', 'aria-hidden': 'true' }, svg);
    if (days.length <= 62) {
      days.forEach((day, i) => {
        const v = s.values.get(day);
        if (v !== undefined) {
          // The day's band names this figure for a screen reader, with the other series' figures of the day.
          titled(el('circle', { class: 'point', cx: x(i), cy: y(v), r: 3, fill: s.color, 'aria-hidden': 'true' }, svg), `${day} · ${s.name}: ${format(v)}`);
        }
      });
    }
  });

  const bands = el('g', {}, svg);
  days.forEach((day, i) => {
    const present = series.filter((s) => s.values.has(day));
    const text = present.length === 0 ? `${day}: not computed` : `${day}\n${present.map((s) => `${s.name}: ${format(s.values.get(day))}`).join('\n')}`;
    const half = days.length > 1 ? step / 2 : (box.right - box.left) / 2;
    keyed(titled(el('rect', { class: 'hover-band', x: x(i) - half, y: box.top, width: half * 2, height: box.bottom - box.top }, bands), text));
  });
  return rovingFocus(svg);
}

/**
 * Stacked bars over days. series: [{ name, color, texture, values: Map(day -> number) }], stacked from the bottom up
 * in their order, with a white line between segments; texture: one of TEXTURES (by its place when not given); unit: the words after a figure, given the figure (" instance" for 1). The arrow keys move through the segments, day by day.
 */
export function stackedBars({ days, series, label, unit = () => '', width = 760, height = 280 }) {
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
  const fills = series.map((s, n) => textured(svg, s.color, s.texture ?? TEXTURES[n % TEXTURES.length]));
  days.forEach((day, i) => {
    let top = box.bottom;
    for (const [n, s] of series.entries()) {
      const v = s.values.get(day) ?? 0;
      if (v <= 0) {
        continue;
      }
      const height = h(v);
      top -= height;
      const share = totals[i] > 0 ? ` (${formatPercent(v / totals[i])})` : '';
      keyed(titled(el('rect', { class: 'bar', x: x(i) - barWidth / 2, y: top, width: barWidth, height, fill: fills[n], stroke: '#ffffff', 'stroke-width': 0.75 }, svg), `${day} · ${s.name}: ${formatNumber(v)}${unit(v)}${share}`));
    }
  });
  return rovingFocus(svg);
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
        keyed(titled(el('rect', { class: 'bar', x: left, y: middle - 9, width, height: 18, rx: 2, fill: s.color }, svg), `${row.label} · ${s.tip ?? `${s.name}: ${format(s.value)}`}`));
      }
      left += width;
    }
    if (row.beyond) {
      keyed(titled(el('text', { class: 'beyond-text', x: left + 2, y: middle + 4 }, svg), `${row.label} · ${row.beyond}`)).append('»');
    }
    if (row.marker && row.marker.value !== null && row.marker.value !== undefined) {
      const mx = box.left + w(row.marker.value);
      keyed(titled(el('line', { class: 'marker', x1: mx, x2: mx, y1: middle - 13, y2: middle + 13, stroke: '#10141c', 'stroke-width': 2.5 }, svg), `${row.label} · ${row.marker.name}: ${format(row.marker.value)}`));
    }
    // A note with a title (why a row has no bar, say) shows the title on hover.
    const noteParent = row.title ? keyed(titled(el('g', { class: 'note' }, svg), `${row.label} · ${row.title}`)) : svg;
    const note = el('text', { class: 'value-text', x: noteX, y: middle + 4 - ((lines.length - 1) * lineHeight) / 2 }, noteParent);
    // One tspan per line; each but the last keeps its trailing space, so the text reads as the note did.
    lines.forEach((line, n) => {
      el('tspan', n === 0 ? {} : { x: noteX, dy: lineHeight }, note).textContent = n < lines.length - 1 ? `${line} ` : line;
    });
    y += rowHeight;
  });
  return rovingFocus(svg);
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
 * elsewhere closes it) and under a mark that has keyboard focus; Escape hides it. It wraps within the window and is
 * kept inside it.
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
  // Escape hides the tip however it was opened; the focus stays where it is, and the next mark moved to shows its own.
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !tooltip.hidden) {
      event.preventDefault();
      hide();
    }
  });
}
