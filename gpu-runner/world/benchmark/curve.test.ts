import { describe, expect, it } from 'vitest';
import { curveSvg, timeToReach } from './curve.ts';

const points = [
  { steps: 100, seconds: 2, identity: 0.4, fidelity: 0.9 },
  { steps: 200, seconds: 4, identity: 0.6, fidelity: 0.8 },
  { steps: 400, seconds: 8, identity: 0.7, fidelity: 0.7 },
];

describe('identity against time', () => {
  it('finds the first time a curve reaches an identity, linear between points', () => {
    expect(timeToReach(points, 0.5)).toBeCloseTo(3, 12);
    expect(timeToReach(points, 0.3)).toBe(2);
    expect(timeToReach(points, 0.7)).toBe(8);
    expect(timeToReach(points, 0.71)).toBeNull();
    // Order of the points does not matter; a dip after reaching it does not either.
    expect(timeToReach([points[2]!, points[0]!, points[1]!, { steps: 800, seconds: 16, identity: 0.5, fidelity: 0.6 }], 0.65)).toBeCloseTo(6, 12);
  });

  it('draws every curve, point and legend entry, escaping names', () => {
    const svg = curveSvg([{ method: 'A & B', points }, { method: 'C', points: points.map((p) => ({ ...p, seconds: p.seconds / 10 })) }], 'title <x>', { label: 'ref', identity: 0.6 });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(6);
    expect(svg).toContain('A &amp; B');
    expect(svg).toContain('title &lt;x&gt;');
    expect(() => curveSvg([], 't')).toThrow(/no points/);
  });
});
