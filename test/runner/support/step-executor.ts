// A JobExecutor that does real, bounded onnxruntime work in steps, for testing the service's mechanics (queue,
// progress, cancellation, shutdown) independently of the model pack. Each step is one run of a small ONNX graph built
// with the engine (`state ← tanh(state·W)`, `depth` times) in the engine's session worker thread; its outputs are
// derived from that state, so they depend on the inputs and on every step.
import { SessionHost, type SessionRunner } from '../../../gpu-runner/onnx/runtime/session-host.ts';
import { Graph, matmul, serializeModel, tanh, tensor } from '../../../gpu-runner/onnx/index.ts';
import { float32ToFloat16Bits, parseSafetensors, serializeSafetensors } from '../../../gpu-runner/io/safetensors.ts';
import {
  InvalidInputError,
  throwIfAborted,
  type ExecutionContext,
  type GenerateInput,
  type GenerateOutput,
  type JobExecutor,
  type PersonalizeInput,
  type PersonalizeOutput,
  type RgbImage,
} from '../../../gpu-runner/server/jobs/executor.ts';

export const STEP_MODEL_ID = 'test/onnx-step-model';
const STATE_TENSOR = 'state';

export type StepExecutorOptions = {
  /** The state is [size, size]; each step costs `depth` MatMuls of that size. */
  size?: number;
  depth?: number;
};

export class OnnxStepExecutor implements JobExecutor {
  readonly description: string;
  private host: SessionHost | undefined;
  private session: SessionRunner | undefined;
  private readonly size: number;
  private readonly depth: number;

  constructor(options: StepExecutorOptions = {}) {
    this.size = options.size ?? 32;
    this.depth = options.depth ?? 4;
    this.description = `onnx step executor (${this.size}×${this.size}, depth ${this.depth}, cpu)`;
  }

  async warmup(): Promise<void> {
    this.host = new SessionHost({ cacheDir: null, log: () => undefined });
    // One thread: the machine running the tests is shared, and the service mechanics do not need speed.
    this.session = await this.host.open(stepModel(this.size, this.depth), { executionProvider: 'cpu', intraOpNumThreads: 1 });
  }

  async personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput> {
    const state = await this.iterate(seedFromImages(input.images, this.size, input.finetune.seed), input.finetune.steps, context);
    const files = input.outputs.map(({ format, dtype }) => ({
      format,
      dtype,
      bytes: serializeSafetensors(
        {
          [STATE_TENSOR]:
            dtype === 'fp16'
              ? { dtype: 'F16', shape: [this.size, this.size], data: float32ToFloat16Bits(state) }
              : { dtype: 'F32', shape: [this.size, this.size], data: state },
        },
        { format, method: input.method },
      ),
    }));
    return { baseModelId: STEP_MODEL_ID, rank: input.finetune.rank, layers: [STATE_TENSOR], numParameters: state.length, files };
  }

  async generate(input: GenerateInput, context: ExecutionContext): Promise<GenerateOutput> {
    let weights: Float32Array;
    try {
      const tensor = parseSafetensors(input.weights.bytes, 'weights').tensors.get(STATE_TENSOR);
      if (!tensor || tensor.dtype !== 'F32' || tensor.data.length !== this.size * this.size) throw new Error(`no F32 '${STATE_TENSOR}' of ${this.size}×${this.size}`);
      weights = tensor.data as Float32Array;
    } catch (error) {
      throw new InvalidInputError(`weights are not usable: ${error instanceof Error ? error.message : String(error)}`);
    }
    const { params } = input;
    const images = [];
    for (let index = 0; index < params.num_images; index++) {
      const seed = (params.seed + index) >>> 0;
      const start = mix(weights, seed);
      const state = await this.iterate(start, params.steps, context, index * params.steps, params.num_images * params.steps);
      images.push({ index, seed, image: render(state, params.width, params.height) });
    }
    return { images };
  }

  async close(): Promise<void> {
    await this.session?.close();
    await this.host?.shutdown();
  }

  private async iterate(
    start: Float32Array,
    steps: number,
    context: ExecutionContext,
    offset = 0,
    total = steps,
  ): Promise<Float32Array> {
    if (!this.session) throw new Error('warmup() has not run');
    let state = start;
    for (let step = 1; step <= steps; step++) {
      throwIfAborted(context.signal);
      const outputs = await this.session.run({ X: { type: 'float32', dims: [this.size, this.size], data: state } });
      state = outputs.Y?.data as Float32Array;
      context.reportProgress(offset + step, total);
    }
    return state;
  }
}

/** `depth` times X ← tanh(X·W), W a fixed well-conditioned matrix (identity plus a small rotation-like term). */
function stepModel(size: number, depth: number): Uint8Array {
  const g = new Graph('step');
  const w = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    w[i * size + i] = 1;
    w[i * size + ((i + 1) % size)] = 0.25;
    w[((i + 1) % size) * size + i] = -0.25;
  }
  const weight = g.param('W', tensor('float32', [size, size], w));
  let h = g.input('X', 'float32', [size, size]);
  for (let i = 0; i < depth; i++) h = tanh(matmul(h, weight));
  g.output(h, 'Y');
  return serializeModel(g);
}

function seedFromImages(images: readonly RgbImage[], size: number, seed: number): Float32Array {
  const state = new Float32Array(size * size);
  for (const image of images) {
    const stride = Math.max(1, Math.floor(image.data.length / state.length));
    for (let i = 0; i < state.length; i++) state[i] = (state[i] ?? 0) + ((image.data[(i * stride) % image.data.length] ?? 0) / 255 - 0.5);
  }
  for (let i = 0; i < state.length; i++) state[i] = (state[i] ?? 0) / images.length + Math.sin(seed + i) * 0.01;
  return state;
}

function mix(weights: Float32Array, seed: number): Float32Array {
  return weights.map((value, i) => value + Math.sin(seed * 7919 + i) * 0.1);
}

function render(state: Float32Array, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(((state[i % state.length] ?? 0) * 0.5 + 0.5) * 255);
  return { width, height, channels: 3, data };
}
