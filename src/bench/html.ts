/**
 * The report as one self-contained HTML page: tables and inline SVG charts (recall against queries
 * per second, as ann-benchmarks draws it, and latency histograms). No script, no style sheet or
 * font from elsewhere: it opens offline and can be mailed.
 */
import type { BenchReport } from './report.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const whole = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const rate = (n: number): string => (n < 100 ? fixed(n, 1) : whole(n));
const mb = (bytes: number): string => fixed(bytes / 2 ** 20, 1);

function table(headers: string[], rows: string[][]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

interface Series {
  name: string;
  points: { x: number; y: number; label: string }[];
}

/** Recall (x) against queries per second (y, log scale), one line per system; exact search is a point at recall 1. */
export function recallChart(report: BenchReport): string {
  const width = 720;
  const height = 420;
  const pad = { left: 70, right: 150, top: 20, bottom: 50 };
  const series: Series[] = report.ann.systems.map((s) => ({ name: s.name, points: s.curve.map((p) => ({ x: p.recall, y: p.qps, label: `ef ${p.efSearch}` })) }));
  series.push({ name: 'exact', points: [{ x: 1, y: report.ann.exact.qps, label: 'exact' }] });
  const all = series.flatMap((s) => s.points).filter((p) => p.y > 0);
  const minX = Math.min(0.9, ...all.map((p) => p.x));
  const xLow = Math.floor(minX * 20) / 20;
  // Decades around the data, at least one.
  const yLow = 10 ** Math.floor(Math.log10(Math.max(1e-3, Math.min(...all.map((p) => p.y)))));
  const yHigh = Math.max(yLow * 10, 10 ** Math.ceil(Math.log10(Math.max(...all.map((p) => p.y)))));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sx = (x: number): number => pad.left + ((x - xLow) / (1 - xLow || 1)) * plotW;
  const sy = (y: number): number => pad.top + plotH - ((Math.log10(Math.max(y, yLow)) - Math.log10(yLow)) / (Math.log10(yHigh) - Math.log10(yLow) || 1)) * plotH;
  const parts: string[] = [];
  for (let d = Math.log10(yLow); d <= Math.log10(yHigh); d++) {
    const y = sy(10 ** d);
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${pad.left - 8}" y="${y + 4}" text-anchor="end" font-size="12">${whole(10 ** d)}</text>`);
  }
  for (let x = xLow; x <= 1.0001; x += 0.05) {
    const px = sx(x);
    parts.push(`<line x1="${px}" x2="${px}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#eee"/><text x="${px}" y="${pad.top + plotH + 18}" text-anchor="middle" font-size="12">${fixed(x, 2)}</text>`);
  }
  series.forEach((s, i) => {
    const color = s.name === 'exact' ? '#000' : (COLORS[i % COLORS.length] as string);
    const path = s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    if (s.points.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${path}"/>`);
    for (const p of s.points) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="4" fill="${color}"><title>${escapeHtml(`${s.name} ${p.label}: recall ${fixed(p.x, 4)}, ${rate(p.y)} qps`)}</title></circle>`);
    parts.push(`<rect x="${width - pad.right + 16}" y="${pad.top + i * 20}" width="12" height="12" fill="${color}"/><text x="${width - pad.right + 34}" y="${pad.top + i * 20 + 11}" font-size="13">${escapeHtml(s.name)}</text>`);
  });
  parts.push(`<text x="${pad.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="13">recall@${report.ann.k}</text>`);
  parts.push(`<text transform="translate(16 ${pad.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13">queries per second (log)</text>`);
  return `<svg class="chart recall" role="img" aria-label="recall against queries per second" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
}

/** One latency histogram: bars over log-spaced buckets. */
export function histogramChart(title: string, h: { edgesMs: number[]; counts: number[] }): string {
  const width = 360;
  const height = 180;
  const pad = { left: 40, right: 10, top: 24, bottom: 34 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const most = Math.max(1, ...h.counts);
  const bar = h.counts.length > 0 ? plotW / h.counts.length : plotW;
  const bars = h.counts.map((count, i) => {
    const barH = (count / most) * plotH;
    const from = h.edgesMs[i] ?? 0;
    const to = h.edgesMs[i + 1] ?? from;
    return `<rect x="${(pad.left + i * bar).toFixed(1)}" y="${(pad.top + plotH - barH).toFixed(1)}" width="${Math.max(1, bar - 1).toFixed(1)}" height="${barH.toFixed(1)}" fill="#4a7ab5"><title>${count} calls took ${fixed(from, 3)}–${fixed(to, 3)} ms</title></rect>`;
  });
  const first = h.edgesMs[0] ?? 0;
  const last = h.edgesMs[h.edgesMs.length - 1] ?? 0;
  return (
    `<svg class="chart histogram" role="img" aria-label="${escapeHtml(`latency histogram: ${title}`)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<text x="${pad.left}" y="16" font-size="13">${escapeHtml(title)}</text>${bars.join('')}` +
    `<text x="${pad.left}" y="${height - 12}" font-size="11">${fixed(first, 3)} ms</text><text x="${width - pad.right}" y="${height - 12}" font-size="11" text-anchor="end">${fixed(last, 3)} ms (log scale)</text></svg>`
  );
}

export function renderHtml(report: BenchReport): string {
  const { ann, e2e, machine } = report;
  const sections: string[] = [];
  sections.push(`<h1>memex bench: ${escapeHtml(report.dataset.name)}</h1>`);
  sections.push(
    `<p>${escapeHtml(report.dataset.description)}. ANN vectors: ${escapeHtml(report.dataset.vectorSource)}.</p>` +
      `<p>Memex ${escapeHtml(report.memex)}, model ${escapeHtml(report.model.id)} (${report.model.dimension}-d), ${escapeHtml(machine.cpu)}, ${machine.cores} cores, ${mb(machine.memoryBytes)} MiB, ${escapeHtml(machine.platform)} ${escapeHtml(machine.arch)}, Node ${escapeHtml(machine.node)}; started ${escapeHtml(report.startedAt)}, took ${fixed(report.seconds, 0)} s (load average ${fixed(machine.loadAverage[0], 2)} → ${fixed(machine.loadAverage[1], 2)}).</p>`,
  );
  sections.push(`<h2>Recall against speed</h2><p>${whole(ann.rows)} rows × ${ann.dimension}-d, ${whole(ann.queries)} queries, recall@${ann.k} against exact search (${ann.exact.kind} scan), one query at a time on one thread, m ${report.options.m}, efConstruction ${report.options.efConstruction}, ${report.options.rounds} timed rounds per efSearch.</p>`);
  sections.push(recallChart(report));
  const curveRows = ann.systems.flatMap((s) => s.curve.map((p) => [s.name, String(p.efSearch), fixed(p.recall, 4), rate(p.qps), fixed(p.p50Ms, 3), fixed(p.p99Ms, 3)]));
  curveRows.push(['exact', '', '1', rate(ann.exact.qps), fixed(ann.exact.p50Ms, 3), fixed(ann.exact.p99Ms, 3)]);
  sections.push(table(['system', 'efSearch', `recall@${ann.k}`, 'qps', 'p50 ms', 'p99 ms'], curveRows));
  if (ann.equalRecall.length > 0) {
    sections.push(`<h3>At equal recall</h3><p>Memex's queries/s over each other system's at the same recall@${ann.k}, the other's read off its curve (log queries/s linear in recall between its points); "–" where its curve does not reach that recall.</p>`);
    sections.push(
      table(
        ['Memex efSearch', `recall@${ann.k}`, 'Memex qps', ...ann.equalRecall.map((e) => `${e.peer} qps`), ...ann.equalRecall.map((e) => `Memex / ${e.peer}`)],
        (ann.equalRecall[0]?.points ?? []).map((point, i) => [
          String(point.efSearch),
          fixed(point.recall, 4),
          rate(point.qps),
          ...ann.equalRecall.map((e) => {
            const qps = e.points[i]?.peerQps;
            return qps == null ? '–' : rate(qps);
          }),
          ...ann.equalRecall.map((e) => {
            const ratio = e.points[i]?.ratio;
            return ratio == null ? '–' : `${fixed(ratio, 2)}x`;
          }),
        ]),
      ),
    );
  }
  sections.push('<h2>Build, files and memory</h2>');
  sections.push(
    table(
      ['system', 'version', 'build s', 'rows/s', 'memory MiB', 'file MiB', 'write s', 'load s', 'reloaded = built'],
      ann.systems.map((s) => [s.name, s.version, fixed(s.build.seconds, 2), whole(s.build.rowsPerSecond), mb(s.build.memoryBytes), mb(s.build.fileBytes), fixed(s.build.writeSeconds, 3), fixed(s.build.loadSeconds, 3), s.build.reloadMatches ? 'yes' : 'NO']),
    ),
  );
  if (ann.skipped.length > 0) sections.push(`<ul class="skipped">${ann.skipped.map((s) => `<li>${escapeHtml(`${s.name}: ${s.reason}`)}</li>`).join('')}</ul>`);
  sections.push('<h2>Latency</h2><div class="grid">');
  for (const s of ann.systems) sections.push(histogramChart(`${s.name}, efSearch ${s.histogram.efSearch}`, s.histogram));
  sections.push(histogramChart('exact search', ann.exact.histogram));
  if (e2e) sections.push(histogramChart('hybrid search with its embedding', e2e.search.histogram));
  sections.push('</div>');
  if (report.embedding) sections.push(`<p>Embedding the ANN texts with the model: ${whole(report.embedding.texts)} texts in ${fixed(report.embedding.seconds, 1)} s (${rate(report.embedding.textsPerSecond)} texts/s).</p>`);
  if (e2e) {
    sections.push(`<h2>End to end, through the library</h2><p>${whole(e2e.messages)} messages in ${whole(e2e.sessions)} sessions, written into a fresh temporary data dir.</p>`);
    sections.push(
      table(
        ['measure', 'Memex', 'baseline in the same run', 'ratio'],
        [
          ['ingest (messages/s)', rate(e2e.ingest.messagesPerSecond), `${rate(e2e.ingest.modelAlone.textsPerSecond)} texts/s: Memex's embedder alone on the same texts (sorted by length, batches of ${e2e.ingest.modelAlone.batchSize})`, `${fixed(e2e.ingest.ratio, 2)}x`],
          ...(e2e.ingest.library && e2e.ingest.libraryRatio !== null
            ? [['', '', `${rate(e2e.ingest.library.textsPerSecond)} texts/s: transformers.js's pipeline alone on the same texts and batches`, `${fixed(e2e.ingest.libraryRatio, 2)}x`]]
            : []),
          ['index build from the session files (s)', fixed(e2e.index.buildSeconds, 2), '', ''],
          ['index load by a fresh instance (s)', fixed(e2e.index.loadSeconds, 2), '', ''],
          ['hybrid search p50 / p99 (ms)', `${fixed(e2e.search.p50Ms, 2)} / ${fixed(e2e.search.p99Ms, 2)}`, `${fixed(e2e.search.embedP50Ms, 2)} ms p50: the query embedding alone`, ''],
          ['hybrid search, one caller (queries/s)', rate(e2e.search.qps), '', ''],
          [`hybrid search, ${e2e.search.concurrency} callers (queries/s)`, rate(e2e.search.concurrentQps), '', `${fixed(e2e.search.concurrentQps / (e2e.search.qps || 1), 2)}x one caller`],
          [`context window with recall, budget ${e2e.context.budget}: p50 / p99 (ms)`, `${fixed(e2e.context.p50Ms, 2)} / ${fixed(e2e.context.p99Ms, 2)}`, `${whole(e2e.context.meanTokens)} tokens on average, at most ${whole(e2e.context.maxTokens)}`, ''],
        ],
      ),
    );
  }
  const style =
    'body{font:14px/1.45 system-ui,sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#222}table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fff}';
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>memex bench: ${escapeHtml(report.dataset.name)}</title><style>${style}</style></head><body>\n${sections.join('\n')}\n</body></html>\n`;
}
