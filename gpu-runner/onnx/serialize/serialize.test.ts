import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Bits, writeSafetensors } from '../../io/safetensors.ts';
import * as E from '../index.ts';
import { createSession, runGraph, runSession } from '../testing/ort.ts';
import { randomTensor, seededRng } from '../testing/random.ts';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'onnx-engine-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Canonical description of a graph: equal descriptions mean identical graphs. */
function describeGraph(g: E.Graph): unknown {
  const tensorOf = (t: E.TensorValue) => (E.isExternal(t) ? { ...t } : { dtype: t.dtype, dims: t.dims, bytes: Buffer.from(E.bytesOf(t.data)).toString('base64') });
  return {
    name: g.name,
    inputs: g.inputs,
    outputs: g.outputs,
    values: [...g.values.values()].map((v) => v.toString()).sort(),
    initializers: [...g.initializers].map(([n, t]) => [n, tensorOf(t)]),
    nodes: g.nodes.map((n) => ({ ...n, attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, typeof v === 'object' && 'data' in v ? tensorOf(v) : v])) })),
  };
}

function sampleGraph(): E.Graph {
  const rng = seededRng(11);
  const g = new E.Graph('sample');
  const x = g.input('x', 'float32', ['batch', 4, 8, 8]);
  const w = g.param('conv.weight', randomTensor('float32', [8, 4, 3, 3], rng));
  const b = g.param('conv.bias', randomTensor('float32', [8], rng));
  let h = E.conv2d(x, w, b, { padding: 1, stride: 2 });
  h = E.silu(E.groupNorm(h, 2, g.param('norm.weight', randomTensor('float32', [8], rng)), g.param('norm.bias', randomTensor('float32', [8], rng)), 1e-6));
  h = E.upsampleNearest(h);
  const tokens = E.reshape(E.transpose(E.reshape(h, ['batch', 8, 64]), [0, 2, 1]), ['batch', 64, 8]);
  const q = E.linear(tokens, g.param('q.weight', randomTensor('float32', [8, 8], rng)));
  const y = E.attention(q, q, q, { heads: 2 });
  const s = E.stopGradient(E.layerNorm(y, g.param('ln.weight', randomTensor('float32', [8], rng))));
  g.output(E.gelu(s, 'tanh'), 'y');
  return g;
}

describe('serialization', () => {
  it('round-trips a graph: write → read gives the identical graph and identical outputs', async () => {
    const g = sampleGraph();
    const back = E.readModel(E.serializeModel(g));
    expect(describeGraph(back)).toEqual(describeGraph(g));
    expect(back.nodes.find((n) => n.stopGradient)).toBeDefined();
    const feeds = { x: randomTensor('float32', [2, 4, 8, 8], seededRng(3)) };
    const [a, b] = [await runGraph(g, feeds), await runGraph(back, feeds)];
    expect(Array.from(b.y!.data as Float32Array)).toEqual(Array.from(a.y!.data as Float32Array));
    expect(E.serializeModel(back)).toEqual(E.serializeModel(g));
  });

  it('writes value_info for every intermediate, checked by onnxruntime\'s strict shape inference (on in all engine tests)', async () => {
    const g = sampleGraph();
    const model = E.toModelProto(g);
    expect(model.graph!.valueInfo!.length).toBe(g.values.size - g.inputs.length - g.outputs.length - g.initializers.size);
    await (await createSession(E.encodeModel(model))).release();
    const exp = model.graph!.valueInfo!.find((v) => v.type!.tensorType!.shape!.dim!.length === 4 && v.type!.tensorType!.shape!.dim![1]!.dimValue === 8)!;
    exp.type!.tensorType!.shape!.dim![1] = { dimValue: 9 };
    await expect(createSession(E.encodeModel(model))).rejects.toThrow(/ShapeInferenceError/);
  });

  it('stores attributes with the op table kinds (FLOAT epsilon, INT axis, INTS perm)', () => {
    const g = new E.Graph('attrs');
    const x = g.input('x', 'float32', [2, 3]);
    g.output(E.layerNorm(E.transpose(x, [1, 0]), g.param('s', E.tensor('float32', [2], [1, 1])), undefined, { epsilon: 2 }), 'y');
    const model = E.decodeModel(E.serializeModel(g));
    const ln = model.graph!.node!.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.attribute!.map((a) => [a.name, a.type])).toEqual([['axis', 2], ['epsilon', 1]]);
    const tr = model.graph!.node!.find((n) => n.opType === 'Transpose')!;
    expect(tr.attribute!.map((a) => [a.name, a.type, a.ints])).toEqual([['perm', 7, [1, 0]]]);
    expect((model.opsetImport ?? []).map((o) => [o.domain ?? '', o.version])).toEqual([['', E.OPSET_VERSION]]);
  });

  it('writes large initializers to an external data file that onnxruntime loads', async () => {
    const g = sampleGraph();
    const dir = tempDir();
    const path = E.saveModel(g, dir, 'model.onnx', { file: 'weights/model.bin', thresholdBytes: 64 });
    const model = E.decodeModel(readFileSync(path));
    const external = model.graph!.initializer!.filter((t) => t.dataLocation === 1);
    expect(external.map((t) => t.name).sort()).toEqual(['conv.weight', 'q.weight']);
    for (const t of external) expect(Number(t.externalData!.find((e) => e.key === 'offset')!.value) % E.EXTERNAL_DATA_ALIGNMENT).toBe(0);
    const feeds = { x: randomTensor('float32', [1, 4, 8, 8], seededRng(4)) };
    const session = await createSession(path);
    const fromFile = await runSession(session, feeds);
    await session.release();
    const inline = await runGraph(g, feeds);
    expect(Array.from(fromFile.y!.data as Float32Array)).toEqual(Array.from(inline.y!.data as Float32Array));
    // reading back: references by default, data on request
    const refs = E.loadModel(path);
    expect(E.isExternal(refs.initializers.get('conv.weight')!)).toBe(true);
    const loaded = E.loadModel(path, { loadExternal: true });
    expect(describeGraph(loaded)).toEqual(describeGraph(g));
  });

  it('points initializers into a .safetensors file at its byte offsets (fp32 and fp16 + Cast)', async () => {
    const dir = tempDir();
    const rng = seededRng(5);
    const w = randomTensor('float32', [3, 5], rng);
    const v = randomTensor('float32', [5], rng);
    const vHalf = float32ToFloat16Bits(v.data as Float32Array);
    writeSafetensors(join(dir, 'unet.safetensors'), {
      'a.weight': { dtype: 'F32', shape: [3, 5], data: w.data as Float32Array },
      'b.bias': { dtype: 'F16', shape: [5], data: vHalf },
    });
    const refs = E.safetensorsExternalTensors(dir, 'unet.safetensors');
    expect(refs.get('a.weight')!.external.offset).toBeGreaterThan(8);
    const g = new E.Graph('st');
    const x = g.input('x', 'float32', [2, 3]);
    const y = E.add(E.matmul(x, g.param('a.weight', refs.get('a.weight')!)), E.cast(g.param('b.bias', refs.get('b.bias')!), 'float32'));
    g.output(y, 'y');
    const path = E.saveModel(g, dir, 'model.onnx');
    expect(statSync(path).size).toBeLessThan(2000); // weights not copied into the protobuf
    const feeds = { x: randomTensor('float32', [2, 3], rng) };
    const session = await createSession(path);
    const out = (await runSession(session, feeds)).y!.data as Float32Array;
    await session.release();
    const inline = new E.Graph('inline');
    const xi = inline.input('x', 'float32', [2, 3]);
    inline.output(E.add(E.matmul(xi, inline.param('w', w)), E.cast(inline.param('b', { dtype: 'float16', dims: [5], data: vHalf }), 'float32')), 'y');
    expect(Array.from(out)).toEqual(Array.from((await runGraph(inline, feeds)).y!.data as Float32Array));
  });

  it('keeps external offsets beyond 2^31 exact (the > 2 GiB mechanism; the full-size run is gpu-runner/commands/onnx-large-model-check.ts)', () => {
    const g = new E.Graph('far');
    const offset = 3 * 2 ** 31 + 4096;
    g.output(E.neg(g.param('w', { dtype: 'float32', dims: [2], external: { location: 'weights.bin', offset, length: 8 } })), 'y');
    const back = E.readModel(E.serializeModel(g));
    expect(back.initializers.get('w')).toEqual({ dtype: 'float32', dims: [2], external: { location: 'weights.bin', offset, length: 8 } });
  });

  it('refuses external locations outside the model folder', () => {
    const g = new E.Graph('bad');
    g.output(E.neg(g.param('w', { dtype: 'float32', dims: [1], external: { location: '../w.bin', offset: 0, length: 4 } })), 'y');
    expect(() => E.saveModel(g, tempDir(), 'm.onnx')).toThrow(/inside the model's folder/);
  });

  it('refuses inline weights beyond protobuf\'s 2 GiB limit and asks for external data', () => {
    // a fake tensor whose reported byte length exceeds the limit: only the size check runs, nothing is allocated
    const g = new E.Graph('huge');
    const fake = { dtype: 'float32', dims: [1], data: { byteLength: E.PROTOBUF_LIMIT_BYTES + 1 } } as unknown as E.HostTensor;
    g.output(E.neg(g.param('w', fake)), 'y');
    expect(() => E.serializeModel(g)).toThrow(/external data/);
  });
});
