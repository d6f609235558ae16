// Identity against wall-clock time (HyperDreamBooth's claim is speed at equal quality): each method's points, the
// time at which a baseline first reaches a given identity (linear between its points), and the curve as an SVG chart.
export interface CurvePoint {
  readonly steps: number;
  readonly seconds: number;
  readonly identity: number;
  readonly fidelity: number;
}

export interface MethodCurve {
  readonly method: string;
  readonly points: readonly CurvePoint[];
}

/** The first time the curve reaches `identity`, interpolated between the points around it; null if it never does. */
export function timeToReach(points: readonly CurvePoint[], identity: number): number | null {
  const sorted = [...points].sort((a, b) => a.seconds - b.seconds);
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i]!;
    if (p.identity < identity) continue;
    const previous = sorted[i - 1];
    if (!previous || previous.identity >= identity) return p.seconds;
    const share = (identity - previous.identity) / (p.identity - previous.identity);
    return previous.seconds + share * (p.seconds - previous.seconds);
  }
  return null;
}

const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
const escapeXml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A line chart, seconds on a log axis, identity on a linear one, a legend; rendered to PNG by sharp (librsvg). */
export function curveSvg(curves: readonly MethodCurve[], title: string, reference?: { label: string; identity: number }): string {
  const width = 720;
  const height = 420;
  const margin = { left: 70, right: 200, top: 40, bottom: 55 };
  const all = curves.flatMap((c) => c.points);
  if (all.length === 0) throw new Error('curve: no points');
  const seconds = all.map((p) => Math.max(p.seconds, 1e-3));
  const xMin = Math.floor(Math.log10(Math.min(...seconds)));
  const xMax = Math.ceil(Math.log10(Math.max(...seconds)));
  const identities = all.map((p) => p.identity).concat(reference ? [reference.identity] : []);
  const yMin = Math.floor(Math.min(...identities) * 10) / 10;
  const yMax = Math.ceil(Math.max(...identities) * 10) / 10;
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const x = (s: number) => margin.left + ((Math.log10(Math.max(s, 1e-3)) - xMin) / Math.max(1, xMax - xMin)) * plotW;
  const y = (v: number) => margin.top + (1 - (v - yMin) / Math.max(1e-9, yMax - yMin)) * plotH;
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="white"/>`];
  parts.push(`<text x="${width / 2}" y="24" font-family="sans-serif" font-size="15" text-anchor="middle">${escapeXml(title)}</text>`);
  for (let e = xMin; e <= xMax; e++) {
    const px = x(10 ** e);
    parts.push(`<line x1="${px}" y1="${margin.top}" x2="${px}" y2="${margin.top + plotH}" stroke="#ddd"/>`);
    parts.push(`<text x="${px}" y="${margin.top + plotH + 18}" font-family="sans-serif" font-size="12" text-anchor="middle">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} s</text>`);
  }
  for (let v = yMin; v <= yMax + 1e-9; v += 0.1) {
    const py = y(v);
    parts.push(`<line x1="${margin.left}" y1="${py}" x2="${margin.left + plotW}" y2="${py}" stroke="#ddd"/>`);
    parts.push(`<text x="${margin.left - 8}" y="${py + 4}" font-family="sans-serif" font-size="12" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" font-family="sans-serif" font-size="13" text-anchor="middle">wall-clock seconds per personalization (log scale)</text>`);
  parts.push(`<text x="18" y="${margin.top + plotH / 2}" font-family="sans-serif" font-size="13" text-anchor="middle" transform="rotate(-90 18 ${margin.top + plotH / 2})">identity similarity</text>`);
  if (reference) {
    parts.push(`<line x1="${margin.left}" y1="${y(reference.identity)}" x2="${margin.left + plotW}" y2="${y(reference.identity)}" stroke="#888" stroke-dasharray="5,4"/>`);
  }
  curves.forEach((curve, k) => {
    const colour = COLOURS[k % COLOURS.length]!;
    const sorted = [...curve.points].sort((a, b) => a.seconds - b.seconds);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${sorted.map((p) => `${x(p.seconds).toFixed(1)},${y(p.identity).toFixed(1)}`).join(' ')}"/>`);
    for (const p of sorted) {
      parts.push(`<circle cx="${x(p.seconds).toFixed(1)}" cy="${y(p.identity).toFixed(1)}" r="3.5" fill="${colour}"/>`);
      parts.push(`<text x="${(x(p.seconds) + 5).toFixed(1)}" y="${(y(p.identity) - 6).toFixed(1)}" font-family="sans-serif" font-size="10" fill="${colour}">${p.steps}</text>`);
    }
    const ly = margin.top + 10 + k * 22;
    parts.push(`<line x1="${width - margin.right + 15}" y1="${ly}" x2="${width - margin.right + 40}" y2="${ly}" stroke="${colour}" stroke-width="3"/>`);
    parts.push(`<text x="${width - margin.right + 46}" y="${ly + 4}" font-family="sans-serif" font-size="12">${escapeXml(curve.method)}</text>`);
  });
  if (reference) {
    const ly = margin.top + 10 + curves.length * 22;
    parts.push(`<line x1="${width - margin.right + 15}" y1="${ly}" x2="${width - margin.right + 40}" y2="${ly}" stroke="#888" stroke-dasharray="5,4"/>`);
    parts.push(`<text x="${width - margin.right + 46}" y="${ly + 4}" font-family="sans-serif" font-size="12">${escapeXml(reference.label)}</text>`);
  }
  parts.push(`<text x="${width - margin.right + 15}" y="${height - margin.bottom}" font-family="sans-serif" font-size="10" fill="#555">labels: optimizer steps</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}
