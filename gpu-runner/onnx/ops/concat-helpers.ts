import type { Dim, TensorType } from '../ir/types.ts';
import { shapeToString } from '../ir/types.ts';

/** Type of the concatenation of `types` along `axis`: other dims must agree; sizes add (symbolic stays symbolic). */
export function concatOf(types: readonly TensorType[], axis: number): TensorType {
  const first = types[0]!;
  let size: Dim | undefined;
  for (const t of types) {
    if (t.dtype !== first.dtype) throw new Error('Concat: dtypes differ');
    if (t.shape.length !== first.shape.length || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new Error(`Concat: shapes ${types.map((x) => shapeToString(x.shape)).join(', ')} differ off axis ${axis}`);
    }
    const d = t.shape[axis]!;
    size = size === undefined ? d : typeof size === 'number' && typeof d === 'number' ? size + d : `${String(size)}+${String(d)}`;
  }
  return { dtype: first.dtype, shape: first.shape.map((d, i) => (i === axis ? size! : d)) };
}
