// Small models for the runtime's tests, built with the engine's own builder.
import { add, Graph, matmul, mul, serializeModel, tensor } from '../index.ts';

/** Y = X·W·scale + offset with W = [[1, 2], [3, 4]]; X is [rows, 2]. A different `offset` is a different graph. */
export function affineModel(offset = 1, rows: number | string = 2): Uint8Array {
  const g = new Graph('affine');
  const x = g.input('X', 'float32', [rows, 2]);
  const w = g.param('W', tensor('float32', [2, 2], [1, 2, 3, 4]));
  g.output(add(mul(matmul(x, w), 2), offset), 'Y');
  return serializeModel(g);
}

/**
 * `depth` chained [size, size] MatMuls with the identity matrix: slow enough (hundreds of ms for depth 64 at 512)
 * to observe the event loop during a run, and Y = X exactly.
 */
export function slowIdentityModel(size: number, depth: number): Uint8Array {
  const g = new Graph('slow_identity');
  const eye = new Float32Array(size * size);
  for (let i = 0; i < size; i++) eye[i * size + i] = 1;
  const w = g.param('I', tensor('float32', [size, size], eye));
  let h = g.input('X', 'float32', [size, size]);
  for (let i = 0; i < depth; i++) h = matmul(h, w);
  g.output(h, 'Y');
  return serializeModel(g);
}
