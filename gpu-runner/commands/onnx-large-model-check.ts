// Checks the > 2 GiB path end to end (too heavy for CI): builds a model with LARGE_MODEL_BYTES of float32 weights,
// saves it with external data, loads it in onnxruntime and checks values read from every tensor, near its start and
// its end (so offsets past 2^31 are exercised). Run: npx tsx gpu-runner/commands/onnx-large-model-check.ts [dir]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { add, gather, Graph, reduceSum, saveModel } from '../onnx/index.ts';

/** 2.25 GiB: beyond protobuf's 2 GiB limit, so only external data can hold it. */
const LARGE_MODEL_BYTES = 2.25 * 2 ** 30;
const TENSOR_ELEMENTS = 2 ** 26; // 256 MiB of float32 per tensor

async function main(): Promise<void> {
  const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'onnx-large-'));
  const count = Math.ceil(LARGE_MODEL_BYTES / (TENSOR_ELEMENTS * 4));
  const g = new Graph('large');
  const idx = g.input('idx', 'int64', [2]);
  let total = undefined as ReturnType<typeof reduceSum> | undefined;
  const expected: number[] = [];
  for (let k = 0; k < count; k++) {
    const data = new Float32Array(TENSOR_ELEMENTS);
    data[0] = k + 1;
    data[TENSOR_ELEMENTS - 1] = 1000 * (k + 1);
    const w = g.param(`w${k}`, { dtype: 'float32', dims: [TENSOR_ELEMENTS], data });
    const picked = reduceSum(gather(w, idx));
    total = total ? add(total, picked) : picked;
    expected.push(1001 * (k + 1));
  }
  g.output(total!, 'total');
  const t0 = performance.now();
  const path = saveModel(g, dir, 'model.onnx', { file: 'model.weights', thresholdBytes: 1024 });
  const saveSeconds = (performance.now() - t0) / 1000;
  const weightsBytes = statSync(join(dir, 'model.weights')).size;
  const t1 = performance.now();
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  const out = await session.run({ idx: new ort.Tensor('int64', BigInt64Array.from([0n, BigInt(TENSOR_ELEMENTS - 1)]), [2]) });
  const loadRunSeconds = (performance.now() - t1) / 1000;
  await session.release();
  const got = Number((out.total!.data as Float32Array)[0]);
  const want = expected.reduce((a, b) => a + b, 0);
  const report = { tensors: count, weightsBytes, modelProtoBytes: statSync(path).size, saveSeconds, loadRunSeconds, got, want, ok: got === want };
  console.log(JSON.stringify(report));
  if (process.argv[2] === undefined) rmSync(dir, { recursive: true, force: true });
  if (!report.ok) process.exit(1);
}

void main();
