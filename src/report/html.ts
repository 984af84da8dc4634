/**
 * `baton drill --html FILE`: one self-contained page (inline CSS and SVG, no script, no external
 * asset) that a CI server can keep as an artifact and anyone can open offline. The timeline has
 * one lane per host with the steps as bars, one strip per probe with a tick per read, and the
 * client's outage windows shaded across the whole chart.
 *
 * Stable hooks for tests and styling: #timeline, .lane[data-host], .step-bar[data-status],
 * .bar-label, .step-bar.slowest + .slowest-label (the slowest step of each host),
 * .probe-strip[data-probe], .tick.ok/.tick.failed, .outage[data-ms][data-during], #moves,
 * #windows, #steps.
 */
import { directionOf, windowPhaseLabel, type DrillReport } from '../drill/report.js';
import type { BarStatus, StepBar } from '../drill/timeline.js';
import { escapeAttr as attr, escapeText as text } from './xml.js';

export const STATUS_COLOURS: Record<BarStatus, string> = {
  ok: '#6aa84f',
  changed: '#e69138',
  failed: '#cc0000',
  skipped: '#b7b7b7',
  'would-change': '#6fa8dc',
  reverted: '#8e7cc3',
  'revert-failed': '#660000',
};

const W = 1100;
const LEFT = 200;
const RIGHT = 20;
const LANE_H = 36;
const STRIP_H = 22;
const TOP = 34;

/** Round step for axis ticks: about 10 ticks over the span. */
function tickStep(spanMs: number): number {
  const raw = spanMs / 10;
  for (const s of [100, 200, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000]) if (s >= raw) return s;
  return Math.ceil(raw / 600_000) * 600_000;
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
/** Axis labels: as few decimals as the tick step needs. */
const axisLabel = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;
const fixed = (n: number) => (Math.round(n * 10) / 10).toString();

/** How many characters of 10 px sans-serif fit in a bar this wide, about. */
const labelChars = (width: number) => Math.floor((width - 6) / 5.6);

/** The longest step (not skipped) of each host: where the time went, called out on its lane. */
export function slowestBars(bars: StepBar[]): Map<string, StepBar> {
  const out = new Map<string, StepBar>();
  for (const b of bars) {
    if (b.status === 'skipped') continue;
    const cur = out.get(b.host);
    if (!cur || b.end - b.start > cur.end - cur.start) out.set(b.host, b);
  }
  return out;
}

const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/** `slowest: NAME 1020 ms`, the name shortened to fit the lanes' label column (9 px text, ~5 px a character). */
function slowestLabel(b: StepBar): string {
  const ms = ` ${b.end - b.start} ms`;
  const room = Math.floor((LEFT - 12) / 5) - 'slowest: '.length - ms.length;
  return `slowest: ${clip(b.name, Math.max(6, room))}${ms}`;
}

export function renderDrillHtml(r: DrillReport): string {
  const origin = r.startedAt;
  const span = Math.max(1, r.endedAt - origin);
  const plotW = W - LEFT - RIGHT;
  const x = (t: number) => LEFT + (Math.min(Math.max(t - origin, 0), span) / span) * plotW;
  const wOf = (a: number, b: number) => Math.max(1.5, x(b) - x(a));

  const hosts: string[] = [];
  for (const b of r.bars) if (!hosts.includes(b.host)) hosts.push(b.host);
  const lanesTop = TOP + 22;
  const stripsTop = lanesTop + hosts.length * LANE_H + 10;
  const chartBottom = stripsTop + r.probes.length * STRIP_H;
  // Each probe's window labels get their own row under the chart: windows of probes overlap.
  const labelRows = Math.max(1, r.probes.length) * 12;
  const H = chartBottom + labelRows + 32;

  const svg: string[] = [];
  svg.push(`<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="drill timeline">`);
  svg.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);

  // Playbook phases along the top: when each playbook ran.
  svg.push('<g class="phases">');
  for (const p of r.playbooks) {
    if (p.outcome === 'not-run') continue;
    const px = x(p.start);
    const pw = wOf(p.start, p.end);
    svg.push(
      `<g class="phase" data-role="${attr(p.role)}"><rect x="${fixed(px)}" y="${TOP}" width="${fixed(pw)}" height="16" fill="${p.exitCode === 0 ? '#d9ead3' : '#f4cccc'}" stroke="#999"/>` +
        `<text x="${fixed(px + 4)}" y="${TOP + 12}" font-size="11">${text(`${p.role}: ${p.file}${directionOf(p) ? ` ${directionOf(p)}` : ''}`)}</text><title>${text(`${p.file}: ${p.outcome} (exit ${p.exitCode})`)}</title></g>`,
    );
  }
  svg.push('</g>');

  // Host lanes: bars labelled with the step's name where it fits; the slowest step called out.
  const slowest = slowestBars(r.bars);
  hosts.forEach((h, i) => {
    const y = lanesTop + i * LANE_H;
    const slow = slowest.get(h);
    svg.push(`<g class="lane" data-host="${attr(h)}">`);
    svg.push(`<rect x="${LEFT}" y="${y}" width="${plotW}" height="${LANE_H - 4}" fill="${i % 2 ? '#f7f7f7' : '#efefef'}"/>`);
    svg.push(`<text class="lane-label" x="${LEFT - 8}" y="${y + 13}" text-anchor="end" font-size="12">${text(h)}</text>`);
    if (slow) {
      svg.push(
        `<text class="slowest-label" data-host="${attr(h)}" x="${LEFT - 8}" y="${y + 26}" text-anchor="end" font-size="9" fill="#b45f06">` +
          `${text(slowestLabel(slow))}<title>${text(`slowest step on ${h}: ${slow.name}, ${slow.end - slow.start} ms`)}</title></text>`,
      );
    }
    for (const b of r.bars.filter((bar) => bar.host === h)) {
      const tip = `${b.host}: ${b.name} [${b.kind}] ${b.status}, ${b.end - b.start} ms (${fmtS(b.start - origin)} → ${fmtS(b.end - origin)})${b.error ? `\n${b.error}` : ''}`;
      const bx = x(b.start);
      const bw = wOf(b.start, b.end);
      const isSlow = b === slow;
      svg.push(
        `<rect class="step-bar ${attr(b.status)}${isSlow ? ' slowest' : ''}" data-status="${attr(b.status)}" data-host="${attr(b.host)}" data-step="${attr(b.name)}" data-ms="${b.end - b.start}" ` +
          `x="${fixed(bx)}" y="${y + 3}" width="${fixed(bw)}" height="${LANE_H - 10}" fill="${STATUS_COLOURS[b.status]}" stroke="${isSlow ? '#b45f06' : '#333'}" stroke-width="${isSlow ? 2 : 0.5}"><title>${text(tip)}</title></rect>`,
      );
      // The name, shortened to what fits; none on a bar too narrow for a few letters (hover tells).
      const fits = labelChars(bw);
      if (fits >= 6) {
        svg.push(`<text class="bar-label" x="${fixed(bx + 3)}" y="${y + LANE_H / 2 + 2}" font-size="10" fill="#000" pointer-events="none">${text(clip(b.name, fits))}</text>`);
      }
    }
    svg.push('</g>');
  });

  // Probe strips: a tick per read, as wide as the read took.
  r.probes.forEach((p, i) => {
    const y = stripsTop + i * STRIP_H;
    svg.push(`<g class="probe-strip" data-probe="${attr(p.label)}">`);
    svg.push(`<rect x="${LEFT}" y="${y}" width="${plotW}" height="${STRIP_H - 4}" fill="#fafafa" stroke="#ddd"/>`);
    svg.push(`<text class="probe-label" x="${LEFT - 8}" y="${y + STRIP_H / 2 + 2}" text-anchor="end" font-size="11">${text(p.label.length > 26 ? '…' + p.label.slice(-25) : p.label)}<title>${text(p.label)}</title></text>`);
    for (const s of p.samples) {
      svg.push(`<rect class="tick ${s.ok ? 'ok' : 'failed'}" x="${fixed(x(s.t))}" y="${y + 2}" width="${fixed(wOf(s.t, s.t + s.ms))}" height="${STRIP_H - 8}" fill="${s.ok ? '#38a169' : '#e53e3e'}"/>`);
    }
    svg.push('</g>');
  });

  // Outage windows, shaded across every lane and strip, duration labelled.
  svg.push('<g class="outages">');
  r.probes.forEach((p, pi) => {
    p.windows.forEach((w, wi) => {
      const wx = x(w.start);
      const ww = wOf(w.start, w.end);
      const during = windowPhaseLabel(p.perPlaybook, wi);
      svg.push(
        `<g class="outage" data-probe="${attr(p.label)}" data-ms="${w.ms}" data-start="${w.start - origin}" data-end="${w.end - origin}"${during ? ` data-during="${attr(during)}"` : ''}>` +
          `<rect x="${fixed(wx)}" y="${lanesTop - 4}" width="${fixed(ww)}" height="${chartBottom - lanesTop + 4}" fill="#e53e3e" fill-opacity="0.18" stroke="#e53e3e" stroke-dasharray="3 2"/>` +
          `<text x="${fixed(wx + ww / 2)}" y="${chartBottom + 12 + pi * 12}" text-anchor="middle" font-size="11" fill="#b00">${w.ms} ms${w.open ? ' (open)' : ''}</text>` +
          `<title>${text(`${p.label}: no service ${fmtS(w.start - origin)} → ${fmtS(w.end - origin)} (${w.ms} ms, ${w.failedReads} failed reads)${during ? `, during ${during}` : ''}`)}</title></g>`,
      );
    });
  });
  svg.push('</g>');

  // Time axis in seconds from the drill's start.
  const step = tickStep(span);
  const axisY = chartBottom + labelRows + 8;
  svg.push(`<g class="axis"><line x1="${LEFT}" y1="${axisY}" x2="${LEFT + plotW}" y2="${axisY}" stroke="#333"/>`);
  for (let t = 0; t <= span; t += step) {
    const tx = x(origin + t);
    svg.push(`<line x1="${fixed(tx)}" y1="${axisY}" x2="${fixed(tx)}" y2="${axisY + 5}" stroke="#333"/><text x="${fixed(tx)}" y="${axisY + 16}" text-anchor="middle" font-size="10">${axisLabel(t)}</text>`);
  }
  svg.push(`<text x="${LEFT - 14}" y="${axisY + 16}" text-anchor="end" font-size="10">time from start</text></g>`);
  svg.push('</svg>');

  const when = new Date(r.startedAt).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  // What moved where, in order: the header a person reads first.
  const moves = r.playbooks.map((p) => `${p.file}${directionOf(p) ? ` ${directionOf(p)}` : ''}`).join(', then ');
  const title = `Drill ${r.verdict === 'pass' ? 'PASSED' : 'FAILED'}: ${moves}`;
  const moveRows = r.playbooks.map((p, i) => {
    // Named by probe only when there are several.
    const outage = r.probes
      .map((pr) => {
        const ph = pr.perPlaybook?.find((x) => x.role === p.role);
        return ph ? `${r.probes.length > 1 ? `${pr.label}: ` : ''}${ph.outageMs} ms in ${ph.windows.length} window(s)` : '';
      })
      .filter(Boolean)
      .join('; ');
    const pause = i > 0 && r.thenAfterMs !== undefined ? ` (started ${r.thenAfterMs} ms after the client read well again)` : '';
    return (
      `<tr class="move" data-role="${attr(p.role)}"><td>${text(p.role)}</td><td>${text(p.file)}</td><td class="direction">${text(directionOf(p) || '—')}</td>` +
      `<td>${text(p.outcome)}${text(pause)}</td><td>${p.outcome === 'not-run' ? '' : `${fmtS(p.start - origin)} → ${fmtS(p.end - origin)}`}</td><td class="outage-cell">${text(outage)}</td></tr>`
    );
  });

  const windowRows = r.probes.flatMap((p) =>
    p.windows.map(
      (w, wi) =>
        `<tr class="window-row"><td>${text(p.label)}</td><td>${fmtS(w.start - origin)}</td><td>${fmtS(w.end - origin)}</td><td>${w.ms} ms</td><td>${w.failedReads}</td>` +
        `<td class="during">${text(windowPhaseLabel(p.perPlaybook, wi))}</td><td>${w.open ? 'still failing at the end' : ''}</td></tr>`,
    ),
  );
  const probeRows = r.probes.map(
    (p) =>
      `<tr><td>${text(p.label)}</td><td>${text(p.from ?? 'controller')}</td><td>${p.reads}</td><td>${p.failed}</td><td>${p.windows.length}</td><td class="${p.outageOverLimit ? 'bad' : ''}">${p.totalOutageMs} ms</td>` +
      `<td class="${p.integrity && !p.integrity.ok ? 'bad' : ''}">${p.integrity ? (p.integrity.ok ? 'same bytes throughout' : text(p.integrity.reason ?? 'differs')) : '—'}</td></tr>`,
  );
  const stepRows = [...r.bars]
    .sort((a, b) => a.start - b.start)
    .map(
      (b) =>
        `<tr class="step-row"><td>${text(r.playbooks[b.playbook]?.role ?? '')}</td><td>${text(b.playName)}</td><td>${text(b.host)}</td><td>${text(b.name)}</td><td>${text(b.kind)}</td>` +
        `<td><span class="badge" style="background:${STATUS_COLOURS[b.status]}">${text(b.status)}</span></td><td>${fmtS(b.start - origin)}</td>` +
        `<td${slowest.get(b.host) === b ? ` class="slowest">${b.end - b.start} ms (slowest on ${text(b.host)})` : `>${b.end - b.start} ms`}</td><td class="err">${text(b.error ?? '')}</td></tr>`,
    );
  const legend = Object.entries(STATUS_COLOURS)
    .map(([s, c]) => `<span class="key"><span class="swatch" style="background:${c}"></span>${text(s)}</span>`)
    .join(' ');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${text(title)}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h1.pass { color: #2f7d32; } h1.fail { color: #b00020; }
.meta { color: #555; margin-bottom: 12px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
td.err { white-space: pre-wrap; }
th { background: #f0f0f0; }
td.bad { color: #b00020; font-weight: bold; }
td.slowest { color: #b45f06; font-weight: bold; }
td.direction { font-weight: bold; }
td.outage-cell { white-space: normal; }
td.err { white-space: pre-wrap; font-family: monospace; font-size: 11px; max-width: 420px; }
.badge { color: #fff; padding: 0 6px; border-radius: 3px; }
.key { margin-right: 12px; font-size: 12px; } .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
ul.reasons { color: #b00020; }
</style>
</head>
<body>
<h1 class="${r.verdict}">${text(title)}</h1>
<div class="meta">${text(when)} · ${fmtS(span)} · exit ${r.exitCode}${r.maxOutageMs !== undefined ? ` · max outage ${r.maxOutageMs} ms` : ''} · probes every ${r.intervalMs} ms</div>
<table id="moves"><thead><tr><th></th><th>playbook</th><th>moved</th><th>outcome</th><th>ran</th><th>client outage during it</th></tr></thead><tbody>
${moveRows.join('\n')}
</tbody></table>
${r.reasons.length ? `<ul class="reasons">${r.reasons.map((x2) => `<li>${text(x2)}</li>`).join('')}</ul>` : ''}
${svg.join('\n')}
<div class="legend">${legend} <span class="key"><span class="swatch" style="background:#e53e3e;opacity:.3"></span>client outage</span></div>
<h2>Probes</h2>
<table id="probes"><thead><tr><th>probe</th><th>from</th><th>reads</th><th>failed</th><th>windows</th><th>total outage</th><th>data</th></tr></thead><tbody>
${probeRows.join('\n')}
</tbody></table>
<h2>Outage windows</h2>
<table id="windows"><thead><tr><th>probe</th><th>start</th><th>end</th><th>duration</th><th>failed reads</th><th>during</th><th></th></tr></thead><tbody>
${windowRows.length ? windowRows.join('\n') : '<tr><td colspan="7">none: every read succeeded</td></tr>'}
</tbody></table>
<h2>Steps</h2>
<table id="steps"><thead><tr><th>playbook</th><th>play</th><th>host</th><th>step</th><th>kind</th><th>status</th><th>start</th><th>took</th><th>error</th></tr></thead><tbody>
${stepRows.join('\n')}
</tbody></table>
</body>
</html>
`;
}
