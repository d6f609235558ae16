// The session host in a browser: the same interface as ../session-host.ts (open, run, the resident trainer's
// transport), with onnxruntime-web sessions on the calling thread. The browser bundle (gpu-runner/browser/) puts this
// module in place of ../session-host.ts, so the library above it (trainer, prediction, sampler) runs unchanged; the
// bundle itself runs in a Web Worker, which is what keeps a long `session.run` off the page's thread here.
// Sessions run on onnxruntime-web's WebAssembly build, imported here; the page may hand the host onnxruntime-web's
// WebGPU build (`useWebGpu`, loaded at run time and only then: its WebAssembly is twice the size) for some kinds of
// session, the sampler's, and `placements()` reports where each kind actually runs.
import * as ort from 'onnxruntime-web/wasm';
import type { GraphOptimizationLevel, ModelSource } from '../session-cache.ts';
import type { OpenOptions, SessionDefaults, SessionHostOptions, SessionKind, SessionKindStatus, SessionRunner, SessionRunnerOptions } from '../session-host.ts';
import type { RuntimeFeeds, RuntimeOutputs, RuntimeTensorType } from '../tensor.ts';
import { ResidentTrainer, type ResidentStepRequest, type ResidentStepResult, type ResidentTrainerSpec } from '../resident-trainer.ts';
import type { OptimizerState, ParamSet } from '../../optim/types.ts';

// Everything the Node module exports that is not about where sessions run (helpers such as liveRunner, the types)
// is its own; the names below take precedence over these.
export * from '../session-host.ts';

/** No disk tier in a browser: optimized models are not persisted. */
export const DEFAULT_CACHE_DIR = '';

/** What the browser offers onnxruntime-web: its WebAssembly backend, with threads only when cross-origin isolated. */
export interface BrowserBackend {
  readonly name: 'wasm';
  readonly threads: number;
  readonly simd: boolean;
}

/** onnxruntime-web's API: one build per module instance (the WebAssembly one imported here, or the WebGPU one). */
export type OrtModule = typeof ort;
export type BrowserExecutionProvider = 'webgpu' | 'wasm';

/** onnxruntime-web's WebGPU build and the kinds of session to open on it. */
export interface WebGpuSessions {
  readonly ort: OrtModule;
  readonly kinds: ReadonlySet<SessionKind>;
}

/**
 * Errors only: at its default (warnings) onnxruntime prints, as a console error for every WebGPU session, that it
 * placed shape computations on the CPU, which it does on purpose ("ORT explicitly assigns shape related ops to CPU").
 */
export const WEBGPU_LOG_SEVERITY = 3;

/** Where a kind's sessions run, as last opened. */
export interface BrowserKindPlacement {
  readonly requested: BrowserExecutionProvider;
  readonly executionProvider: BrowserExecutionProvider;
  /** Why a kind meant for WebGPU runs on WebAssembly: its session could not be created there. */
  readonly fallback?: string;
}

interface Held {
  readonly session: ort.InferenceSession;
  /** The build that made the session: feeds must be its own Tensor class. */
  readonly ort: OrtModule;
  readonly opened: Omit<SessionRunner, 'run' | 'close' | 'alive'>;
  holders: number;
}

interface Created {
  readonly session: ort.InferenceSession;
  readonly ort: OrtModule;
  readonly placement: BrowserKindPlacement;
}

function toOrt(api: OrtModule, feeds: RuntimeFeeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new api.Tensor(t.type, t.data, t.dims);
  return out;
}

function fromOrt(results: ort.InferenceSession.ReturnType): RuntimeOutputs {
  const outputs: RuntimeOutputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    outputs[name] = { type: tensor.type as RuntimeTensorType, dims: [...tensor.dims], data: tensor.data as RuntimeOutputs[string]['data'] };
  }
  return outputs;
}

/**
 * The resident trainer hands onnxruntime preallocated outputs (gradients written straight into its WebAssembly SIMD
 * arena, ../../optim/adam-simd.ts); onnxruntime-web returns its own tensors instead of filling those, so this copies
 * each fetched output into the tensor the caller gave.
 */
function fillingPreallocatedOutputs(session: ort.InferenceSession): ort.InferenceSession {
  const run = async (feeds: ort.InferenceSession.FeedsType, fetches?: ort.InferenceSession.FetchesType, options?: ort.InferenceSession.RunOptions) => {
    if (!fetches || Array.isArray(fetches) || typeof fetches !== 'object') return session.run(feeds, fetches as string[], options);
    const given = fetches as Record<string, ort.Tensor | null>;
    const results = { ...(await session.run(feeds, Object.keys(given), options)) };
    for (const [name, target] of Object.entries(given)) {
      if (!target) continue;
      (target.data as Float32Array).set(results[name]!.data as Float32Array);
      results[name] = target;
    }
    return results;
  };
  return new Proxy(session, { get: (target, property) => (property === 'run' ? run : Reflect.get(target, property)) });
}

export function browserBackend(): BrowserBackend {
  return { name: 'wasm', threads: ort.env.wasm.numThreads ?? 1, simd: ort.env.wasm.simd !== false };
}

/** Sessions on this thread, kept while the page lives (a pack's handful of graphs; nothing to evict). */
export class SessionHost {
  private readonly sessions = new Map<string, Held>();
  /** Model bytes opened before, by identity and the provider asked for: the trainer and the samplers reopen the same serialized graph. */
  private readonly byBytes: Record<BrowserExecutionProvider, WeakMap<Uint8Array, string>> = { webgpu: new WeakMap(), wasm: new WeakMap() };
  private readonly trainers = new Map<number, ResidentTrainer>();
  private readonly kinds = new Map<SessionKind, SessionKindStatus>();
  private readonly placed = new Map<SessionKind, BrowserKindPlacement>();
  private webgpu: WebGpuSessions | undefined;
  private nextKey = 1;
  private nextTrainer = 1;
  readonly dead = false;

  // Options are accepted for the Node host's signature; a browser has no disk cache, and one backend.
  constructor(private defaults: SessionHostOptions = {}) {}

  configure(defaults: SessionDefaults): void {
    this.defaults = { ...this.defaults, defaults: { ...defaults } };
  }

  /** The Node host's report (cpu or cuda): WebAssembly sessions are 'cpu'; WebGPU ones have no entry there, see `placements`. */
  sessionKinds(): Record<SessionKind, SessionKindStatus> {
    return Object.fromEntries(this.kinds);
  }

  /** Opens the given kinds' later sessions on onnxruntime-web's WebGPU build (sessions already open stay where they are). */
  useWebGpu(webgpu: WebGpuSessions): void {
    this.webgpu = webgpu;
  }

  placements(): Record<SessionKind, BrowserKindPlacement> {
    return Object.fromEntries(this.placed);
  }

  async open(model: ModelSource, options: OpenOptions = {}): Promise<SessionRunner> {
    if (typeof model === 'string') throw new Error(`the browser opens models from bytes, not paths (${model})`);
    const requested: BrowserExecutionProvider = options.kind !== undefined && this.webgpu?.kinds.has(options.kind) ? 'webgpu' : 'wasm';
    let key = this.byBytes[requested].get(model);
    let held = key === undefined ? undefined : this.sessions.get(key);
    let placement: BrowserKindPlacement | undefined;
    if (!held) {
      const created = await this.create(model, options.graphOptimizationLevel ?? 'all', requested);
      const { session } = created;
      placement = created.placement;
      key = `browser-${this.nextKey++}`;
      held = {
        session,
        ort: created.ort,
        holders: 0,
        opened: { key, executionProvider: 'cpu', source: 'built', digest: key, inputNames: [...session.inputNames], outputNames: [...session.outputNames] },
      };
      this.sessions.set(key, held);
      this.byBytes[requested].set(model, key);
    }
    held.holders++;
    if (options.kind !== undefined) {
      if (placement) this.placed.set(options.kind, placement);
      const onCpu = (placement ?? this.placed.get(options.kind))?.executionProvider !== 'webgpu';
      this.kinds.set(options.kind, { requested: options.executionProvider ?? 'auto', ...(onCpu ? { executionProvider: 'cpu' as const } : {}) });
    }
    return this.runnerFor(held);
  }

  /**
   * A session on WebGPU when asked, else on WebAssembly. WebGPU is asked for alone: onnxruntime keeps its CPU kernels
   * behind any execution provider for the nodes WebGPU lacks, while a list ['webgpu', 'wasm'] would turn a WebGPU that
   * fails to start into a console warning and a WebAssembly session; here that failure is caught and reported.
   */
  private async create(model: Uint8Array, level: GraphOptimizationLevel, requested: BrowserExecutionProvider): Promise<Created> {
    let fallback: string | undefined;
    if (requested === 'webgpu' && this.webgpu) {
      try {
        const session = await this.webgpu.ort.InferenceSession.create(model, { executionProviders: ['webgpu'], graphOptimizationLevel: level, logSeverityLevel: WEBGPU_LOG_SEVERITY });
        return { session, ort: this.webgpu.ort, placement: { requested, executionProvider: 'webgpu' } };
      } catch (error) {
        fallback = error instanceof Error ? error.message : String(error);
      }
    }
    const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: level });
    return { session, ort, placement: { requested, executionProvider: 'wasm', ...(fallback === undefined ? {} : { fallback }) } };
  }

  private runnerFor(held: Held): SessionRunner {
    let closed = false;
    return {
      ...held.opened,
      get alive() {
        return !closed;
      },
      async run(feeds, options = {}) {
        if (closed) throw new Error(`session ${held.opened.key} is closed`);
        const results = options.fetches ? await held.session.run(toOrt(held.ort, feeds), options.fetches) : await held.session.run(toOrt(held.ort, feeds));
        return fromOrt(results);
      },
      async close() {
        if (closed) return;
        closed = true;
        held.holders--;
      },
    };
  }

  private held(key: string): ort.InferenceSession {
    const held = this.sessions.get(key);
    if (!held) throw new Error(`no open session ${key}`);
    return held.session;
  }

  // The resident trainer's transport, as the worker thread serves it in Node (../session-worker.ts).
  async openTrainer(sessionKey: string, spec: ResidentTrainerSpec, adamSessionKey?: string): Promise<number> {
    const id = this.nextTrainer++;
    // onnxruntime-web's sessions and tensors are onnxruntime-common's, the types onnxruntime-node re-exports.
    type NodeSession = ConstructorParameters<typeof ResidentTrainer>[1];
    const session = (key: string) => fillingPreallocatedOutputs(this.held(key)) as unknown as NodeSession;
    this.trainers.set(id, new ResidentTrainer(spec, session(sessionKey), adamSessionKey ? session(adamSessionKey) : undefined));
    return id;
  }

  async attachTrainerForward(trainerId: number, sessionKey: string): Promise<void> {
    this.trainer(trainerId).attachForward(fillingPreallocatedOutputs(this.held(sessionKey)) as unknown as Parameters<ResidentTrainer['attachForward']>[0]);
  }

  trainerStep(trainerId: number, request: ResidentStepRequest): Promise<ResidentStepResult> {
    return this.trainer(trainerId).run(request);
  }

  async trainerSnapshot(trainerId: number): Promise<{ params: ParamSet; state: OptimizerState }> {
    return this.trainer(trainerId).snapshot();
  }

  async closeTrainer(trainerId: number): Promise<void> {
    this.trainers.delete(trainerId);
  }

  async shutdown(): Promise<void> {
    this.trainers.clear();
    for (const held of this.sessions.values()) await held.session.release();
    this.sessions.clear();
  }

  private trainer(id: number): ResidentTrainer {
    const found = this.trainers.get(id);
    if (!found) throw new Error(`no open trainer ${id}`);
    return found;
  }
}

let sharedHost: SessionHost | null = null;

export function sharedSessionHost(): SessionHost {
  sharedHost ??= new SessionHost();
  return sharedHost;
}

export function configureSharedSessionHost(defaults: SessionDefaults): void {
  sharedSessionHost().configure(defaults);
}

export async function shutdownSharedSessionHost(): Promise<void> {
  const host = sharedHost;
  sharedHost = null;
  await host?.shutdown();
}

export async function createSessionRunner(model: ModelSource, options: SessionRunnerOptions = {}): Promise<SessionRunner> {
  const { host, ...sessionOptions } = options;
  return (host ?? sharedSessionHost()).open(model, sessionOptions);
}
