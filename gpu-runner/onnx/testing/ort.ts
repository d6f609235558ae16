import * as ort from 'onnxruntime-node';
import type { Graph } from '../ir/graph.ts';
import type { DType, HostTensor, TypedData } from '../ir/types.ts';
import { serializeModel } from '../serialize/write.ts';

/**
 * Minimal onnxruntime glue for the engine's own tests (the product's session cache and worker execution live in
 * `../runtime/`). Sessions use one intra-op thread so parallel test files do not fight over the 2 cores.
 */
export const TEST_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  // fail on any disagreement between ONNX's own shape inference and the value_info our shape rules wrote
  extra: { session: { strict_shape_type_inference: '1' } },
};

const ORT_TYPE: Readonly<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8',
};

export function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[t.dtype], t.data as ort.Tensor.DataType, [...t.dims]);
}

export function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = (Object.keys(ORT_TYPE) as DType[]).find((k) => ORT_TYPE[k] === t.type);
  if (!dtype) throw new Error(`unsupported onnxruntime tensor type ${t.type}`);
  return { dtype, dims: [...t.dims], data: t.data as TypedData };
}

export async function createSession(model: Graph | Uint8Array | string): Promise<ort.InferenceSession> {
  if (typeof model === 'string') return ort.InferenceSession.create(model, TEST_SESSION_OPTIONS);
  const bytes = model instanceof Uint8Array ? model : serializeModel(model);
  return ort.InferenceSession.create(bytes, TEST_SESSION_OPTIONS);
}

export async function runSession(session: ort.InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
  const out = await session.run(ortFeeds);
  const result: Record<string, HostTensor> = {};
  for (const [k, v] of Object.entries(out)) result[k] = fromOrt(v);
  return result;
}

/** Builds a session for `graph`, runs it once and releases it. */
export async function runGraph(graph: Graph, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const session = await createSession(graph);
  try {
    return await runSession(session, feeds);
  } finally {
    await session.release();
  }
}
