// A training loop's one step (docs/engine.md): one session run of the gradient graph (loss + gradients), optional
// global-norm clipping, then the optimizer update, in TypeScript or as an ONNX graph for large parameter sets.
// Trainable parameters are graph inputs, never initializers, so one cached session serves every step and every subject.
// Parameters and optimizer state live in the session worker (resident-trainer.ts): a step sends the batch and gets the
// loss and gradients back, and neither the session run nor the optimizer loop blocks this thread.
// Frozen weights may be external data (full-size models: protobuf stops at 2 GiB): the gradient graph is then saved in
// the folder their locations are relative to, and its session opened by path (external data stays external).
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertInsideModelFolder, grad, isExternal, prune, serializeModel, type Graph, type Value } from '../index.ts';
import { sharedSessionHost, type SessionRunner, type SessionRunnerOptions } from '../runtime/session-host.ts';
import type { RuntimeFeeds, RuntimeOutputs } from '../runtime/tensor.ts';
import { appendAdamUpdate, appendGlobalNormClip, buildAdamGraph, type AdamFamilyOptimizer } from '../optim/adam-graph.ts';
import { loadCheckpoint, restoreOptimizerState, saveCheckpoint } from '../optim/checkpoint.ts';
import type { LearningRateSchedule } from '../optim/schedule.ts';
import type { StepTiming } from '../runtime/resident-trainer.ts';
import type { Optimizer, OptimizerState, ParamSet } from '../optim/types.ts';

/**
 * `auto` runs Adam as an onnxruntime graph only from this many trainable elements, i.e. never: on the 2-core CPU
 * machine the TypeScript loop (one pass over p, g, m, v, ≈ 10 ns per element; since then a WebAssembly SIMD loop,
 * float32 now, 0.6–1.1 ns: adam-simd.ts) was faster than the graph (a dozen elementwise passes, 5–10 ns) at every
 * size bench:engine measured (table "AdamW update…"). Ask for 'graph' explicitly where onnxruntime's elementwise work
 * is faster, e.g. with CUDA (not measurable here).
 */
/** The session kind a trainer's gradient (and optimizer) sessions report, unless `runner.kind` names another. */
export const TRAINER_SESSION_KIND = 'trainer';

export const GRAPH_OPTIMIZER_MIN_ELEMENTS = Number.POSITIVE_INFINITY;

/**
 * Where the update runs: a TypeScript loop in the worker, a separate Adam graph, or 'fused' into the gradient graph
 * (one session run per step: parameters and moments in, updated ones out, no gradients leaving onnxruntime; the
 * layout that moves least data between host and device on CUDA).
 */
export type OptimizerBackend = 'typescript' | 'graph' | 'fused' | 'auto';

export interface TrainerOptions {
  /** Forward graph computing `loss`; the trainable parameters are among its inputs. */
  graph: Graph;
  loss: Value | string;
  /** Initial values of the trainable parameters, keyed by graph input name. Copied: read results with `read()`. */
  params: ParamSet;
  optimizer: Optimizer;
  schedule: LearningRateSchedule;
  /** Clip the global gradient norm to this value before the update (none when absent). */
  maxGradNorm?: number;
  /** Forward values to return from every step (predictions, metrics). */
  extraOutputs?: readonly (Value | string)[];
  /** Return the gradients from every `step` (inspection, tests); `evaluate` always does. Costs a copy per step. */
  returnGradients?: boolean;
  optimizerBackend?: OptimizerBackend;
  runner?: SessionRunnerOptions;
  /** A checkpoint to continue from: its parameters and optimizer state replace `params` and a fresh state. */
  resumeFrom?: string;
  /**
   * Save the gradient graph as `<modelDir>/<file>` and open it from there. Required when frozen weights are external
   * data: `modelDir` is the folder their locations are relative to (onnxruntime resolves them beside the model file).
   * `file` defaults to `trainer-<content hash>.onnx`, so the same graph reuses its file and cached session.
   */
  saveTo?: TrainerSaveTarget;
}

export interface TrainerSaveTarget {
  modelDir: string;
  file?: string;
}

export interface TrainStepResult {
  /** The step just taken (0-based: the first call returns 0). */
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /**
   * Gradients as computed (after clipping when `maxGradNorm` is set) when the trainer was made with
   * `returnGradients`; empty otherwise, and always with the 'fused' backend.
   */
  grads: ParamSet;
  /** The requested extra outputs. */
  outputs: RuntimeOutputs;
  /** Where the step's time went in the worker (wall ms): the gradient session run, and norm, clipping and update. */
  timing: StepTiming;
}

export interface Trainer {
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  readonly runner: SessionRunner;
  readonly optimizerBackend: Exclude<OptimizerBackend, 'auto'>;
  /** Optimizer steps taken so far. */
  readonly stepCount: number;
  /** Loss and gradients at the current parameters, without updating them. */
  evaluate(feeds: RuntimeFeeds): Promise<{ loss: number; grads: ParamSet; outputs: RuntimeOutputs }>;
  /**
   * The loss (and extra outputs) at the current parameters, from the forward graph's own session (opened on the first
   * call), since onnxruntime runs a whole session whatever is fetched: SD block 22 ms against 137 ms for `evaluate`.
   */
  loss(feeds: RuntimeFeeds): Promise<{ loss: number; outputs: RuntimeOutputs }>;
  /** One optimization step on a batch (`feeds` holds every graph input except the parameters). */
  step(feeds: RuntimeFeeds): Promise<TrainStepResult>;
  /** Copies of the current parameters and optimizer state. */
  read(): Promise<{ params: ParamSet; state: OptimizerState }>;
  saveCheckpoint(path: string, metadata?: Record<string, string>): Promise<void>;
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

function chooseBackend(requested: OptimizerBackend, optimizer: Optimizer, params: ParamSet): Exclude<OptimizerBackend, 'auto'> {
  if ((requested === 'graph' || requested === 'fused') && !isAdamFamily(optimizer)) {
    throw new Error(`trainer: no ${requested} backend for optimizer "${optimizer.name}"`);
  }
  if ((requested === 'graph' || requested === 'fused') && 'emaDecay' in optimizer.config) {
    throw new Error(`trainer: the ${requested} backend keeps no parameter average (emaDecay); use the typescript backend`);
  }
  if (requested !== 'auto') return requested;
  const elements = Object.values(params).reduce((sum, p) => sum + p.length, 0);
  return isAdamFamily(optimizer) && elements >= GRAPH_OPTIMIZER_MIN_ELEMENTS ? 'graph' : 'typescript';
}

/** Hex digits of the content hash in a default gradient-graph file name (64 bits: collisions are not a concern). */
const SAVED_GRAPH_HASH_CHARS = 16;

/**
 * What the session opens: the serialized graph, or (with `saveTo`) the path it was written to. Only the graph's
 * in-memory weights are inline; external ones keep their locations, which must resolve inside `modelDir`.
 */
function modelSourceFor(training: Graph, saveTo: TrainerSaveTarget | undefined): Uint8Array | string {
  const external = [...training.initializers.entries()].filter(([, t]) => isExternal(t));
  if (!saveTo) {
    if (external.length > 0) {
      throw new Error(
        `trainer: ${external.length} frozen weights of graph '${training.name}' are external data (e.g. "${external[0]![0]}"); pass saveTo: { modelDir } with the folder their locations are relative to`,
      );
    }
    return serializeModel(training);
  }
  for (const [, t] of external) if (isExternal(t)) assertInsideModelFolder(t.external.location);
  const bytes = serializeModel(training);
  const file = saveTo.file ?? `trainer-${createHash('sha256').update(bytes).digest('hex').slice(0, SAVED_GRAPH_HASH_CHARS)}.onnx`;
  assertInsideModelFolder(file);
  const path = join(saveTo.modelDir, file);
  if (saveTo.file !== undefined || !existsSync(path)) {
    // Written beside and renamed: a session opening the same path concurrently never reads half a file.
    const partial = `${path}.partial-${process.pid}-${Date.now()}`;
    writeFileSync(partial, bytes);
    renameSync(partial, path);
  }
  return path;
}

/** The forward graph goes beside the gradient graph, under its own content-hashed name (never the caller's `file`). */
function forwardSaveTo(saveTo: TrainerSaveTarget | undefined): TrainerSaveTarget | undefined {
  return saveTo ? { modelDir: saveTo.modelDir } : undefined;
}

/** Loads a checkpoint and checks it fits the graph's parameters; returns its parameters and optimizer state. */
function resume(path: string, shapes: Record<string, number[]>, optimizer: Optimizer): { params: ParamSet; state: OptimizerState } {
  const checkpoint = loadCheckpoint(path);
  for (const [name, shape] of Object.entries(shapes)) {
    const saved = checkpoint.shapes[name];
    if (!saved) throw new Error(`trainer: checkpoint ${path} has no parameter "${name}"`);
    if (saved.join() !== shape.join()) throw new Error(`trainer: checkpoint shape [${saved.join(', ')}] of "${name}" differs from the graph's [${shape.join(', ')}]`);
  }
  const extra = Object.keys(checkpoint.params).filter((name) => !(name in shapes));
  if (extra.length > 0) throw new Error(`trainer: checkpoint has parameters the graph lacks: ${extra.join(', ')}`);
  return { params: checkpoint.params, state: restoreOptimizerState(optimizer, checkpoint) };
}

/**
 * Gradient-graph sources already made from a forward graph, by what shapes them (loss, parameters, extra outputs,
 * backend, clipping, save target). A caller that keeps its forward graph (e.g. one per model and personalization plan)
 * then skips autodiff and serialization on every later trainer: for SD-shaped graphs with inline weights they cost
 * hundreds of milliseconds, more than a dozen optimizer steps. Held weakly: they go with the forward graph.
 */
const trainingSources = new WeakMap<Graph, Map<string, TrainingSource>>();

interface TrainingSource {
  source: Uint8Array | string;
  /** Shapes of the gradient outputs (their computed layout: see `anyGradientLayout`), by parameter. */
  gradShapes?: Record<string, number[]>;
}

function cachedSource(graph: Graph, key: string, make: () => TrainingSource): TrainingSource {
  let byKey = trainingSources.get(graph);
  if (!byKey) trainingSources.set(graph, (byKey = new Map()));
  const cached = byKey.get(key);
  // A saved file removed since (a cleaned cache folder) is written again.
  if (cached !== undefined && (typeof cached.source !== 'string' || existsSync(cached.source))) return cached;
  const made = make();
  byKey.set(key, made);
  return made;
}

/** Builds the gradient graph once, opens its session in the worker, and moves the parameters there. */
export async function createTrainer(options: TrainerOptions): Promise<Trainer> {
  const { graph, optimizer, schedule } = options;
  const shapes = parameterShapes(graph, options.params);
  const initial = options.resumeFrom
    ? resume(options.resumeFrom, shapes, optimizer)
    : { params: options.params, state: optimizer.init(options.params) };

  const names = Object.keys(shapes);
  const extraOutputs = (options.extraOutputs ?? []).map(nameOf);
  const lossName = nameOf(options.loss);
  const backend = chooseBackend(options.optimizerBackend ?? 'auto', optimizer, initial.params);
  const sourceKey = JSON.stringify({
    // A forward graph grown since (nodes, inputs or weights added) is differentiated again.
    size: [graph.nodes.length, graph.inputs.length, graph.initializers.size],
    lossName,
    names,
    extraOutputs,
    backend,
    ...(backend === 'fused' ? { maxGradNorm: options.maxGradNorm ?? null, adam: { name: optimizer.name, config: optimizer.config } } : {}),
    saveTo: options.saveTo ?? null,
  });
  const { source, gradShapes } = cachedSource(graph, sourceKey, () => {
    // The fused update works on the gradients elementwise with the parameters: it needs their shapes. Elsewhere
    // gradients are flat arrays, so they may keep the layout they were computed in (no copy through a Reshape).
    const fused = backend === 'fused';
    const training = grad(graph, { loss: lossName, wrt: names, extraOutputs, gradName: gradOutputName, anyGradientLayout: !fused });
    if (fused) {
      const clipped = appendGlobalNormClip(training, names.map((name) => training.value(gradOutputName(name))), options.maxGradNorm);
      const entries = names.map((name, i) => ({ name, param: training.value(name), grad: clipped[i]! }));
      appendAdamUpdate(training, entries, (optimizer as AdamFamilyOptimizer).config);
    }
    const gradShapes = Object.fromEntries(names.map((name) => [name, training.value(gradOutputName(name)).staticShape]));
    return { source: modelSourceFor(training, options.saveTo), gradShapes };
  });
  const { host: givenHost, ...sessionOptions } = options.runner ?? {};
  const host = givenHost ?? sharedSessionHost();
  // Reported as the 'trainer' kind unless the caller names one; provider and threads are the host's unless given.
  const openOptions = { kind: TRAINER_SESSION_KIND, ...sessionOptions };
  const runner = await host.open(source, { ...openOptions, inputShapes: shapes });
  const adamRunner = backend === 'graph' ? await host.open(serializeModel(buildAdamGraph(shapes, (optimizer as AdamFamilyOptimizer).config)), openOptions) : undefined;
  const trainerId = await host.openTrainer(
    runner.key,
    {
      lossName,
      gradOutputs: Object.fromEntries(names.map((name) => [name, gradOutputName(name)])),
      extraOutputs,
      shapes,
      ...(gradShapes ? { gradShapes } : {}),
      optimizer: { name: optimizer.name, config: optimizer.config },
      params: initial.params,
      state: initial.state,
      fused: backend === 'fused',
    },
    adamRunner?.key,
  );
  let stepCount = initial.state.step;
  // Opened on the first loss-only request: most trainers never make one.
  let forward: Promise<SessionRunner> | undefined;
  const forwardRunner = () =>
    (forward ??= (async () => {
      const { source: forwardSource } = cachedSource(graph, `${sourceKey}/forward`, () => ({ source: modelSourceFor(prune(graph, [lossName, ...extraOutputs]), forwardSaveTo(options.saveTo)) }));
      const opened = await host.open(forwardSource, { ...sessionOptions, inputShapes: shapes });
      await host.attachTrainerForward(trainerId, opened.key);
      return opened;
    })());

  async function read() {
    return host.trainerSnapshot(trainerId);
  }

  return {
    shapes,
    runner,
    optimizerBackend: backend,
    get stepCount() {
      return stepCount;
    },
    async evaluate(feeds) {
      const { loss, grads, outputs } = await host.trainerStep(trainerId, { feeds, lr: 0, update: false });
      return { loss, grads, outputs };
    },
    async loss(feeds) {
      await forwardRunner();
      const { loss, outputs } = await host.trainerStep(trainerId, { feeds, lr: 0, update: false, lossOnly: true });
      return { loss, outputs };
    },
    async step(feeds) {
      const lr = schedule(stepCount);
      const request = { feeds, lr, update: true, returnGradients: options.returnGradients ?? false, ...(options.maxGradNorm === undefined ? {} : { maxGradNorm: options.maxGradNorm }) };
      const result = await host.trainerStep(trainerId, request);
      stepCount = result.step + 1;
      return { ...result, lr };
    },
    read,
    async saveCheckpoint(path, metadata = {}) {
      const { params, state } = await read();
      saveCheckpoint(path, { params, shapes, optimizer: { name: optimizer.name, config: optimizer.config, state }, metadata });
    },
    async close() {
      await host.closeTrainer(trainerId);
      await (await forward?.catch(() => undefined))?.close();
      await adamRunner?.close();
      await runner.close();
    },
  };
}
