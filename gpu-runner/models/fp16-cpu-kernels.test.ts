// Which ops of the sampling graphs (UNet, VAE decoder, CLIP text encoder) onnxruntime-node's CPU provider computes in
// float16. The measurement behind the precision paragraph of `../onnx/runtime/README.md`: a session of a float16
// graph opens and runs on the CPU, but onnxruntime's InsertCastTransformer wraps every node that has no float16 CPU
// kernel in Casts to float32 and back, so the heavy ops (Conv, Gemm, MatMul, Softmax) compute in float32. If an
// onnxruntime upgrade changes this table, this test fails and the README paragraph needs the new table.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../onnx/index.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from './checkpoint/diffusers-folder.ts';
import { buildClipTextGraph } from './clip-text/build.ts';
import { placeholderParams } from './params.ts';
import { buildUnetGraph } from './unet/build.ts';
import { buildVaeDecoderGraph } from './vae/build.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-fp16-kernels-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** float16 1.0: a probe's data only has to be finite. */
const FLOAT16_ONE = 0x3c00;

/** Builds one node of `op` on float16 operands made by `x`. */
type Probe = (g: E.Graph, x: (shape: number[]) => E.Value) => E.Value;

const PROBES: Record<string, Probe> = {
  Conv: (_, x) => E.conv2d(x([1, 4, 5, 5]), x([8, 4, 3, 3]), x([8]), { padding: 1 }),
  Gemm: (_, x) => E.gemm(x([3, 4]), x([5, 4]), x([5]), { transB: true }),
  MatMul: (_, x) => E.matmul(x([2, 2, 3, 4]), x([2, 2, 4, 5])),
  Softmax: (_, x) => E.softmax(x([2, 3]), -1),
  LayerNormalization: (_, x) => E.layerNorm(x([2, 6]), x([6]), x([6])),
  Add: (_, x) => E.add(x([2, 3]), x([2, 3])),
  Mul: (_, x) => E.mul(x([2, 3]), x([2, 3])),
  Div: (_, x) => E.div(x([2, 3]), x([2, 3])),
  Sigmoid: (_, x) => E.sigmoid(x([2, 3])),
  Gelu: (_, x) => E.gelu(x([2, 3])),
  Sin: (_, x) => E.sin(x([2, 3])),
  Cos: (_, x) => E.cos(x([2, 3])),
  Resize: (_, x) => E.upsampleNearest(x([1, 2, 3, 3]), 2),
  ReduceMax: (_, x) => E.reduceMax(x([2, 3]), [1], true),
  Equal: (_, x) => E.equal(x([2, 3]), x([2, 3])),
  Pad: (_, x) => E.pad(x([1, 1, 2, 2]), [0, 0, 0, 0, 0, 0, 1, 1]),
  ConstantOfShape: (g) => E.constantOfShape(g, [3], 1, 'float16'),
  Reshape: (_, x) => E.reshape(x([2, 3]), [3, 2]),
  Transpose: (_, x) => E.transpose(x([2, 3]), [1, 0]),
  Concat: (_, x) => E.concat([x([2, 3]), x([2, 3])], 1),
  Split: (_, x) => E.chunk(x([2, 4]), 2, 1)[0]!,
  Unsqueeze: (_, x) => E.unsqueeze(x([2, 3]), [0]),
  Slice: (_, x) => E.slice(x([4, 3]), [0], [2], [0]),
  Gather: (g, x) => E.gather(x([5, 3]), g.input('ids', 'int64', [2]), 0),
  Identity: (_, x) => E.identity(x([3])),
  Cast: (_, x) => E.cast(x([3]), 'float32'),
};

/** Measured with onnxruntime-node 1.30.0 on x86-64 (AVX-512F, no AVX-512 FP16); the same at optimization 'all'. */
const MEASURED = {
  runsInFloat16: ['Cast', 'Concat', 'ConstantOfShape', 'Gather', 'Identity', 'LayerNormalization', 'Reshape', 'Slice', 'Split', 'Transpose', 'Unsqueeze'],
  widenedToFloat32: ['Add', 'Conv', 'Cos', 'Div', 'Equal', 'Gelu', 'Gemm', 'MatMul', 'Mul', 'Pad', 'ReduceMax', 'Resize', 'Sigmoid', 'Sin', 'Softmax'],
};

function samplingGraphOps(): Set<string> {
  const tiny = (component: string) => referencePath('sd15-tiny', component);
  const unet = openUnetFolder(tiny('unet'));
  const vae = openVaeFolder(tiny('vae'));
  const text = openTextEncoderFolder(tiny('text_encoder'));
  const graphs = (['fp32', 'fp16'] as const).flatMap((precision) => [
    buildUnetGraph(unet.plan, placeholderParams(), { batch: 2, height: 8, width: 8, textLength: 77, precision }).graph,
    buildVaeDecoderGraph(vae.plan, placeholderParams(), { batch: 1, height: 4, width: 4, scaledLatents: true, precision }).graph,
    buildClipTextGraph(text.config, placeholderParams(), { batch: 1, length: 77, precision }).graph,
  ]);
  return new Set(graphs.flatMap((g) => g.nodes.map((n) => n.op)));
}

/**
 * Opens a CPU session of the one-node float16 graph, runs it, and reads back the model onnxruntime actually runs: a
 * Cast it inserted means the node computes in float32 (our probes emit no Cast of their own, except the Cast probe).
 */
async function measure(op: string, probe: Probe): Promise<'float16' | 'float32'> {
  const g = new E.Graph(`probe_${op}`);
  const feeds: Record<string, ort.Tensor> = {};
  const x = (shape: number[]) => {
    const v = g.input(`x${g.inputs.length}`, 'float16', shape);
    feeds[v.name] = new ort.Tensor('float16', new Uint16Array(shape.reduce((a, b) => a * b, 1)).fill(FLOAT16_ONE), shape);
    return v;
  };
  g.output(probe(g, x), 'y');
  if (g.inputs.includes('ids')) feeds.ids = new ort.Tensor('int64', BigInt64Array.of(0n, 3n), [2]);
  const optimizedModelFilePath = join(scratch, `${op}.onnx`);
  const session = await ort.InferenceSession.create(E.serializeModel(g), { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1, optimizedModelFilePath });
  try {
    await session.run(feeds);
  } finally {
    await session.release();
  }
  const casts = (E.decodeModel(readFileSync(optimizedModelFilePath)).graph?.node ?? []).filter((n) => n.opType === 'Cast').length;
  return casts > (op === 'Cast' ? 1 : 0) ? 'float32' : 'float16';
}

describe('float16 on the CPU provider', () => {
  it('has a probe for every op the sampling graphs emit', () => {
    expect([...samplingGraphOps()].filter((op) => !(op in PROBES))).toEqual([]);
  });

  it('opens every float16 node, but computes Conv, Gemm, MatMul and Softmax in float32 behind inserted Casts', async () => {
    const measured: Record<'float16' | 'float32', string[]> = { float16: [], float32: [] };
    for (const [op, probe] of Object.entries(PROBES)) measured[await measure(op, probe)].push(op);
    expect(measured.float16.sort()).toEqual(MEASURED.runsInFloat16);
    expect(measured.float32.sort()).toEqual(MEASURED.widenedToFloat32);
  });

  it('drops a float16 round trip between widened nodes, so activations are not rounded to float16 there', async () => {
    const g = new E.Graph('round_trip');
    const half = E.mul(E.cast(g.input('x', 'float32', [3]), 'float16'), 1);
    g.output(E.cast(E.add(half, E.constantOfShape(g, [3], 0, 'float16')), 'float32'), 'y');
    for (const graphOptimizationLevel of ['disabled', 'all'] as const) {
      const session = await ort.InferenceSession.create(E.serializeModel(g), { graphOptimizationLevel, intraOpNumThreads: 1 });
      try {
        // In float16 these would be infinity and 1 (2^-12 is below half of float16's spacing at 1).
        const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(2e5, 1 + 2 ** -12, 3), [3]) });
        expect(Array.from(y!.data as Float32Array)).toEqual([2e5, 1 + 2 ** -12, 3]);
      } finally {
        await session.release();
      }
    }
  });
});
