import type { Value } from '../ir/graph.ts';
import { upsampleNearest } from '../ops/resize.ts';
import { slice } from '../ops/shape-ops.ts';

/**
 * torch `F.interpolate(mode='nearest')` to the skip connection's size: ×2, cropped when the down path rounded an odd
 * size up (for h = ⌈H/2⌉, floor(d·h/H) = floor(d/2) for every d < H, so the crop is exact).
 */
export function upsampleNearestTo(x: Value, height: number, width: number): Value {
  const up = upsampleNearest(x, 2);
  const [, , h2, w2] = up.staticShape as [number, number, number, number];
  if (h2 === height && w2 === width) return up;
  if (height > h2 || width > w2 || h2 - height > 1 || w2 - width > 1) {
    throw new Error(`upsample: cannot reach ${height}×${width} from ${h2 / 2}×${w2 / 2}`);
  }
  return slice(up, [0, 0], [height, width], [2, 3]);
}
