/**
 * SVG plots for bench/REPORT.md, drawn from the report's values (no plotting dependency):
 * a CDF, intervals (median with IQR), a line and horizontal bars. Pure: strings in, a string out.
 */

export interface Series {
  label: string;
  values: number[];
  dashed?: boolean;
}

const W = 720;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number) => (Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : Number(x.toPrecision(3)).toString());

/** Round tick positions covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

const r1 = (v: number) => Math.round(v * 10) / 10;
const sx = (f: Frame, x: number) => r1(f.left + ((x - f.x0) / (f.x1 - f.x0 || 1)) * f.width);
const sy = (f: Frame, y: number) => r1(f.top + f.height - ((y - f.y0) / (f.y1 - f.y0 || 1)) * f.height);

function frame(f: Frame, title: string, xlabel: string, ylabel: string, yTicks = true): string[] {
  const h = f.top + f.height + 50;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<text x="${f.left + f.width / 2}" y="${h - 8}" text-anchor="middle">${esc(xlabel)}</text>`,
    `<text transform="translate(14 ${f.top + f.height / 2}) rotate(-90)" text-anchor="middle">${esc(ylabel)}</text>`,
    `<rect x="${f.left}" y="${f.top}" width="${f.width}" height="${f.height}" fill="none" stroke="#444"/>`,
  ];
  for (const t of ticks(f.x0, f.x1))
    out.push(
      `<line x1="${sx(f, t)}" x2="${sx(f, t)}" y1="${f.top}" y2="${f.top + f.height}" stroke="#ddd"/>`,
      `<text x="${sx(f, t)}" y="${f.top + f.height + 16}" text-anchor="middle">${num(t)}</text>`,
    );
  if (yTicks)
    for (const t of ticks(f.y0, f.y1))
      out.push(
        `<line x1="${f.left}" x2="${f.left + f.width}" y1="${sy(f, t)}" y2="${sy(f, t)}" stroke="#ddd"/>`,
        `<text x="${f.left - 6}" y="${sy(f, t) + 4}" text-anchor="end">${num(t)}</text>`,
      );
  return out;
}

function legend(out: string[], f: Frame, items: { label: string; color: string; dashed?: boolean }[]): void {
  items.forEach((it, i) => {
    const y = f.top + 14 + i * 16;
    const x = f.left + f.width - 190;
    out.push(
      `<line x1="${x}" x2="${x + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="2"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${x + 30}" y="${y}">${esc(it.label)}</text>`,
    );
  });
}

function vline(out: string[], f: Frame, x: number, label: string): void {
  if (!(x >= f.x0 && x <= f.x1)) return;
  out.push(
    `<line x1="${sx(f, x)}" x2="${sx(f, x)}" y1="${f.top}" y2="${f.top + f.height}" stroke="#000" stroke-dasharray="2 3"/>`,
    `<text x="${sx(f, x) + 4}" y="${f.top + 12}">${esc(label)}</text>`,
  );
}

/** Empirical CDFs, one step line per series; `mark` draws a vertical reference line. */
export function cdfSvg(series: Series[], title: string, xlabel: string, mark?: { x: number; label: string }): string {
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const f: Frame = { x0: 0, x1: Math.max(...all, mark?.x ?? 0, 1) * 1.05, y0: 0, y1: 1, left: 60, top: 30, width: W - 80, height: 320 };
  const out = frame(f, title, xlabel, 'share of samples ≤ x');
  series.forEach((s, i) => {
    const v = s.values.filter(Number.isFinite).sort((a, b) => a - b);
    if (!v.length) return;
    const pts = [`${sx(f, v[0]!)},${sy(f, 0)}`];
    v.forEach((x, k) => pts.push(`${sx(f, x)},${sy(f, k / v.length)}`, `${sx(f, x)},${sy(f, (k + 1) / v.length)}`));
    out.push(
      `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts.join(' ')}"/>`,
    );
  });
  if (mark) vline(out, f, mark.x, mark.label);
  legend(
    out,
    { ...f, top: f.top + f.height - 16 * series.length - 10 },
    series.map((s, i) => ({ label: s.label, color: COLORS[i % COLORS.length]!, dashed: s.dashed })),
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export interface Interval {
  label: string;
  median: number;
  q1: number;
  q3: number;
}

/** One row per item: a dot at the median and a bar over Q1–Q3; `mark` draws a vertical reference line. */
export function intervalSvg(rows: Interval[], title: string, xlabel: string, marks: { x: number; label: string }[] = []): string {
  const xs = rows.flatMap((r) => [r.q1, r.q3, r.median]).filter(Number.isFinite);
  const lo = Math.min(...xs, ...marks.map((m) => m.x));
  const hi = Math.max(...xs, ...marks.map((m) => m.x));
  const pad = (hi - lo) * 0.05 || 0.01;
  const f: Frame = {
    x0: lo - pad,
    x1: hi + pad,
    y0: 0,
    y1: rows.length,
    left: 230,
    top: 30,
    width: W - 250,
    height: rows.length * 24 + 10,
  };
  const out = frame(f, title, xlabel, '', false);
  rows.forEach((r, i) => {
    const y = f.top + 17 + i * 24;
    out.push(`<text x="${f.left - 6}" y="${y + 4}" text-anchor="end">${esc(r.label)}</text>`);
    if (Number.isFinite(r.q1) && Number.isFinite(r.q3))
      out.push(`<line x1="${sx(f, r.q1)}" x2="${sx(f, r.q3)}" y1="${y}" y2="${y}" stroke="${COLORS[0]}" stroke-width="6" opacity="0.5"/>`);
    if (Number.isFinite(r.median)) out.push(`<circle cx="${sx(f, r.median)}" cy="${y}" r="4" fill="${COLORS[1]}"/>`);
  });
  for (const m of marks) vline(out, f, m.x, m.label);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** y against x, points joined in x order; `markY` draws a horizontal reference line. */
export function lineSvg(
  series: { label: string; points: { x: number; y: number }[] }[],
  title: string,
  xlabel: string,
  ylabel: string,
  markY?: { y: number; label: string },
): string {
  const pts = series.flatMap((s) => s.points);
  const f: Frame = {
    x0: 0,
    x1: Math.max(...pts.map((p) => p.x), 1) * 1.05,
    y0: 0,
    y1: Math.max(...pts.map((p) => p.y), markY?.y ?? 0, 1) * 1.1,
    left: 60,
    top: 30,
    width: W - 80,
    height: 300,
  };
  const out = frame(f, title, xlabel, ylabel);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const p = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.6" points="${p.map((q) => `${sx(f, q.x)},${sy(f, q.y)}`).join(' ')}"/>`);
    for (const q of p) out.push(`<circle cx="${sx(f, q.x)}" cy="${sy(f, q.y)}" r="3" fill="${c}"/>`);
  });
  if (markY && markY.y <= f.y1)
    out.push(
      `<line x1="${f.left}" x2="${f.left + f.width}" y1="${sy(f, markY.y)}" y2="${sy(f, markY.y)}" stroke="#000" stroke-dasharray="2 3"/>`,
      `<text x="${f.left + 4}" y="${sy(f, markY.y) - 4}">${esc(markY.label)}</text>`,
    );
  legend(
    out,
    { ...f, top: f.top + f.height - 16 * series.length - 10 },
    series.map((s, i) => ({ label: s.label, color: COLORS[i % COLORS.length]! })),
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Horizontal bars, one per row, the value printed at the bar's end. */
export function barSvg(
  rows: { label: string; value: number }[],
  title: string,
  xlabel: string,
  marks: { x: number; label: string }[] = [],
): string {
  const hi = Math.max(...rows.map((r) => r.value).filter(Number.isFinite), ...marks.map((m) => m.x), 1) * 1.12;
  const f: Frame = { x0: 0, x1: hi, y0: 0, y1: rows.length, left: 280, top: 30, width: W - 300, height: rows.length * 24 + 10 };
  const out = frame(f, title, xlabel, '', false);
  rows.forEach((r, i) => {
    const y = f.top + 8 + i * 24;
    out.push(`<text x="${f.left - 6}" y="${y + 12}" text-anchor="end">${esc(r.label)}</text>`);
    if (Number.isFinite(r.value))
      out.push(
        `<rect x="${f.left}" y="${y}" width="${sx(f, r.value) - f.left}" height="16" fill="${COLORS[0]}"/>`,
        `<text x="${sx(f, r.value) + 4}" y="${y + 12}">${num(r.value)}</text>`,
      );
  });
  for (const m of marks) vline(out, f, m.x, m.label);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
