// A training loop's one step (DESIGN §4): one session run of the gradient graph (loss + gradients), optional
// global-norm clipping, then the optimizer update, in TypeScript or as an ONNX graph for large parameter sets.
// Trainable parameters are graph inputs, never initializers, so one cached session serves every step and every subject.
import { grad, serializeModel, type Graph, type Value } from '../index.ts';
import { createSessionRunner, type SessionRunner, type SessionRunnerOptions } from '../runtime/sessionHost.ts';
import { float32Data, float32Tensor, type RuntimeFeeds, type RuntimeOutputs } from '../runtime/tensor.ts';
import { createGraphOptimizer, type AdamFamilyOptimizer, type GraphOptimizer } from './adamGraph.ts';
import { loadCheckpoint, restoreOptimizerState, saveCheckpoint } from './checkpoint.ts';
import { clipByGlobalNorm, globalNorm } from './clip.ts';
import type { LearningRateSchedule } from './schedule.ts';
import type { Optimizer, OptimizerState, ParamSet } from './types.ts';

/**
 * Above this many trainable elements `auto` runs Adam as a graph: a TypeScript loop costs ≈ 10 ns per element
 * (measured on the 2-core CPU runner, bench:engine), so at 1M elements it adds ≈ 10 ms per step, comparable to a
 * small training step.
 */
export const GRAPH_OPTIMIZER_MIN_ELEMENTS = 1_000_000;

export type OptimizerBackend = 'typescript' | 'graph' | 'auto';

export interface TrainerOptions {
  /** Forward graph computing `loss`; the trainable parameters are among its inputs. */
  graph: Graph;
  loss: Value | string;
  /** Initial values of the trainable parameters, keyed by graph input name. Updated in place by `step`. */
  params: ParamSet;
  optimizer: Optimizer;
  schedule: LearningRateSchedule;
  /** Clip the global gradient norm to this value before the update (none when absent). */
  maxGradNorm?: number;
  /** Forward values to return from every step (predictions, metrics). */
  extraOutputs?: readonly (Value | string)[];
  optimizerBackend?: OptimizerBackend;
  runner?: SessionRunnerOptions;
  /** A checkpoint to continue from: its parameters and optimizer state replace `params` and a fresh state. */
  resumeFrom?: string;
}

export interface TrainStepResult {
  /** The step just taken (0-based: the first call returns 0). */
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Gradients as computed (after clipping when `maxGradNorm` is set). */
  grads: ParamSet;
  /** The requested extra outputs. */
  outputs: RuntimeOutputs;
}

export interface Trainer {
  readonly params: ParamSet;
  readonly state: OptimizerState;
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  readonly runner: SessionRunner;
  readonly optimizerBackend: 'typescript' | 'graph';
  /** Loss and gradients at the current parameters, without updating them. */
  evaluate(feeds: RuntimeFeeds): Promise<{ loss: number; grads: ParamSet; outputs: RuntimeOutputs }>;
  /** One optimization step on a batch (`feeds` holds every graph input except the parameters). */
  step(feeds: RuntimeFeeds): Promise<TrainStepResult>;
  saveCheckpoint(path: string, metadata?: Record<string, string>): void;
  close(): Promise<void>;
}

const nameOf = (v: Value | string) => (typeof v === 'string' ? v : v.name);
const gradOutputName = (name: string) => `grad.${name}`;

function parameterShapes(graph: Graph, params: ParamSet): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const [name, data] of Object.entries(params)) {
    if (!graph.inputs.includes(name)) {
      throw new Error(`trainer: parameter "${name}" is not a graph input (trainable weights must be inputs, not initializers)`);
    }
    const value = graph.value(name);
    if (value.dtype !== 'float32') throw new Error(`trainer: parameter "${name}" is ${value.dtype}, expected float32`);
    const shape = value.staticShape;
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`trainer: parameter "${name}" has ${data.length} values, input shape [${shape.join(', ')}] needs ${size}`);
    shapes[name] = shape;
  }
  if (Object.keys(shapes).length === 0) throw new Error('trainer: no trainable parameters');
  return shapes;
}

function isAdamFamily(optimizer: Optimizer): optimizer is AdamFamilyOptimizer {
  return optimizer.name === 'adam' || optimizer.name === 'adamw';
}

function chooseBackend(requested: OptimizerBackend, optimizer: Optimizer, params: ParamSet): 'typescript' | 'graph' {
  if (requested === 'graph' && !isAdamFamily(optimizer)) throw new Error(`trainer: no graph backend for optimizer "${optimizer.name}"`);
  if (requested !== 'auto') return requested;
  const elements = Object.values(params).reduce((sum, p) => sum + p.length, 0);
  return isAdamFamily(optimizer) && elements >= GRAPH_OPTIMIZER_MIN_ELEMENTS ? 'graph' : 'typescript';
}

/** Builds the gradient graph once, opens its session, and returns a trainer over `params`. */
export async function createTrainer(options: TrainerOptions): Promise<Trainer> {
  const { graph, optimizer, schedule } = options;
  const shapes = parameterShapes(graph, options.params);
  const params = options.params;
  let state = optimizer.init(params);
  if (options.resumeFrom) {
    const checkpoint = loadCheckpoint(options.resumeFrom);
    for (const [name, shape] of Object.entries(shapes)) {
      const saved = checkpoint.shapes[name];
      if (!saved) throw new Error(`trainer: checkpoint ${options.resumeFrom} has no parameter "${name}"`);
      if (saved.join() !== shape.join()) throw new Error(`trainer: checkpoint shape [${saved.join(', ')}] of "${name}" differs from the graph's [${shape.join(', ')}]`);
    }
    const extra = Object.keys(checkpoint.params).filter((name) => !(name in shapes));
    if (extra.length > 0) throw new Error(`trainer: checkpoint has parameters the graph lacks: ${extra.join(', ')}`);
    for (const name of Object.keys(shapes)) params[name]!.set(checkpoint.params[name]!);
    state = restoreOptimizerState(optimizer, checkpoint);
  }

  const names = Object.keys(shapes);
  const extraOutputs = (options.extraOutputs ?? []).map(nameOf);
  const lossName = nameOf(options.loss);
  const training = grad(graph, { loss: lossName, wrt: names, extraOutputs, gradName: gradOutputName });
  const runner = await createSessionRunner(serializeModel(training), { ...options.runner, inputShapes: shapes });
  const backend = chooseBackend(options.optimizerBackend ?? 'auto', optimizer, params);
  let graphOptimizer: GraphOptimizer | undefined;
  if (backend === 'graph') graphOptimizer = await createGraphOptimizer(optimizer as AdamFamilyOptimizer, shapes, options.runner ?? {});

  async function evaluate(feeds: RuntimeFeeds) {
    for (const name of names) {
      if (name in feeds) throw new Error(`trainer: feeds must not include the parameter "${name}" (the trainer supplies it)`);
    }
    const all: RuntimeFeeds = { ...feeds };
    for (const name of names) all[name] = float32Tensor(params[name]!, shapes[name]!);
    const results = await runner.run(all);
    const lossData = float32Data(results, lossName);
    const grads: ParamSet = {};
    for (const name of names) grads[name] = float32Data(results, gradOutputName(name));
    const outputs: RuntimeOutputs = {};
    for (const name of extraOutputs) outputs[name] = results[name]!;
    return { loss: lossData[0]!, grads, outputs };
  }

  return {
    get params() {
      return params;
    },
    get state() {
      return state;
    },
    shapes,
    runner,
    optimizerBackend: backend,
    evaluate,
    async step(feeds) {
      const { loss, grads, outputs } = await evaluate(feeds);
      const gradNorm = options.maxGradNorm === undefined ? globalNorm(grads) : clipByGlobalNorm(grads, options.maxGradNorm);
      const step = state.step;
      const lr = schedule(step);
      if (graphOptimizer) await graphOptimizer.update(params, grads, state, lr);
      else optimizer.update(params, grads, state, lr);
      return { step, loss, lr, gradNorm, grads, outputs };
    },
    saveCheckpoint(path, metadata = {}) {
      saveCheckpoint(path, { params, shapes, optimizer: { name: optimizer.name, config: optimizer.config, state }, metadata });
    },
    async close() {
      await graphOptimizer?.close();
      await runner.close();
    },
  };
}
