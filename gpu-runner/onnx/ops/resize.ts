import type { Value } from '../ir/graph.ts';
import { attrString, defineOp, emit1, need } from './registry.ts';
import { reduceSum } from './reduce.ts';
import { reshape } from './shape-ops.ts';

/**
 * Nearest-neighbour upsampling by an integer factor on the spatial axes, matching
 * torch.nn.functional.interpolate(mode='nearest') (source index = floor(dst / factor)).
 */
export function upsampleNearest(x: Value, factor = 2): Value {
  const scales = x.shape.map((_, i) => (i < 2 ? 1 : factor));
  const g = x.graph;
  return emit1('Resize', [x, undefined, g.constant({ dtype: 'float32', dims: [scales.length], data: Float32Array.from(scales) }, 'scales')], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}

defineOp({
  type: 'Resize',
  attrs: {
    mode: 'string', coordinate_transformation_mode: 'string', nearest_mode: 'string', antialias: 'int',
    cubic_coeff_a: 'float', exclude_outside: 'int', extrapolation_value: 'float', keep_aspect_ratio_policy: 'string', axes: 'ints',
  },
  infer: (ctx) => {
    const x = need(ctx, 0);
    if (ctx.inputs[3]) throw new Error('Resize: pass scales, not sizes');
    const scales = ctx.constant(2);
    if (!scales) throw new Error('Resize: scales must be a constant initializer');
    const s = Array.from(scales.data as Float32Array);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? Math.floor(d * s[i]!) : s[i] === 1 ? d : `${d}*${s[i]}`)) }];
  },
  // nearest with integer factors copies each input cell into a factor^k block: the adjoint sums each block
  vjp: ({ g, inputs: [x, , scalesV], dy: [dy], attrs }) => {
    const nearestFloor = attrString(attrs, 'mode', 'nearest') === 'nearest' && attrString(attrs, 'coordinate_transformation_mode', 'half_pixel') === 'asymmetric' && attrString(attrs, 'nearest_mode', 'round_prefer_floor') === 'floor';
    const s = Array.from(g.constantOf(scalesV)!.data as Float32Array);
    if (!nearestFloor || s.some((f) => !Number.isInteger(f))) throw new Error('Resize: gradient implemented for nearest/asymmetric/floor with integer scales only');
    const dims = x!.staticShape;
    const split = dims.flatMap((d, i) => (s[i] === 1 ? [d] : [d, s[i]!]));
    const blockAxes: number[] = [];
    let k = 0;
    dims.forEach((_, i) => {
      if (s[i] !== 1) blockAxes.push(k + 1);
      k += s[i] === 1 ? 1 : 2;
    });
    return [reshape(reduceSum(reshape(dy!, split), blockAxes, false), dims), undefined, undefined];
  },
});

