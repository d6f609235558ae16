// Running a model graph in-process with onnxruntime-node, on the calling thread and the CPU: for parity checks, tests
// and tools (bench/). Every session of a job goes through the engine's session host instead (`../onnx/runtime/`,
// with the runner's provider and threads, reported per kind); no product module (server/, personalize/, diffusion/)
// imports this file.
import * as ort from 'onnxruntime-node';
import { type Graph, type HostTensor, serializeModel } from '../onnx/index.ts';

export interface GraphSessionOptions {
  /** Threads for one operator (onnxruntime's default, all cores, when absent). */
  threads?: number;
}

export interface GraphSession {
  run(feeds: Record<string, HostTensor>): Promise<Record<string, Float32Array>>;
  release(): Promise<void>;
}

const ORT_TYPES: Partial<Record<HostTensor['dtype'], ort.Tensor.Type>> = { float32: 'float32', int64: 'int64', float16: 'float16' };

function sessionOptions(options: GraphSessionOptions): ort.InferenceSession.SessionOptions {
  return { graphOptimizationLevel: 'all', ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}) };
}

/** A session for an in-memory graph (inline weights) or a saved `.onnx` path (external weights beside it). */
export async function openGraphSession(model: Graph | string, options: GraphSessionOptions = {}): Promise<GraphSession> {
  const session =
    typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions(options))
      : await ort.InferenceSession.create(serializeModel(model), sessionOptions(options));
  return {
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        const type = ORT_TYPES[t.dtype];
        if (!type) throw new Error(`feed "${name}": unsupported dtype ${t.dtype}`);
        ortFeeds[name] = new ort.Tensor(type, t.data as ort.Tensor.DataType, [...t.dims]);
      }
      const outputs = await session.run(ortFeeds);
      const result: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(outputs)) {
        if (t.type !== 'float32') throw new Error(`output "${name}" is ${t.type}, expected float32`);
        result[name] = t.data as Float32Array;
      }
      return result;
    },
    release: () => session.release(),
  };
}

export function float32Feed(dims: readonly number[], data: Float32Array): HostTensor {
  return { dtype: 'float32', dims: [...dims], data };
}
