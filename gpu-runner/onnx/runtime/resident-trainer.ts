// The worker-thread half of a trainer: parameters and optimizer state stay resident next to the sessions, so a step
// moves only the batch in and the loss/gradients out (copying an 8M-parameter set to the worker costs more than the
// MLP's forward pass), and the optimizer loop never blocks the main event loop.
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import type { RuntimeFeeds, RuntimeOutputs, RuntimeTensorType } from './tensor.ts';
import { adam, adamW, type ResolvedAdamConfig } from '../optim/adam.ts';
import { AdamArena } from '../optim/adam-simd.ts';
import { adamGraphNames, GRAD_NORM_OUTPUT, LR_INPUT, STEP_INPUT } from '../optim/adam-graph.ts';
import { clipByGlobalNorm, globalNorm } from '../optim/clip.ts';
import { sgd, type ResolvedSgdConfig } from '../optim/sgd.ts';
import type { Optimizer, OptimizerState, ParamSet } from '../optim/types.ts';

export interface ResidentTrainerSpec {
  lossName: string;
  /** Parameter name → the gradient graph's output holding its gradient. */
  gradOutputs: Record<string, string>;
  extraOutputs: string[];
  shapes: Record<string, number[]>;
  /** Shapes of the gradient outputs where the graph leaves them in their computed layout (same elements). */
  gradShapes?: Record<string, number[]>;
  optimizer: { name: string; config: object };
  /** Initial (or resumed) values; the worker keeps its own copy. */
  params: ParamSet;
  state: OptimizerState;
  /**
   * The gradient session also clips and applies Adam (trainer backend 'fused'): it takes `lr`, `step`, `m/…`, `v/…`
   * and outputs `grad_norm` and `new_param/…`, `new_m/…`, `new_v/…`; a step then returns no gradients.
   */
  fused?: boolean;
}

export interface ResidentStepRequest {
  feeds: RuntimeFeeds;
  /** Learning rate for this step (the schedule runs on the main thread: functions cannot cross threads). */
  lr: number;
  maxGradNorm?: number;
  /** false: only compute loss and gradients. */
  update: boolean;
  /**
   * With `update`: also return the gradients the update used. Off by default: on a large parameter set the copy
   * across threads (and the pages it faults in) cost about a tenth of an SD block's step (15–20 of ~200 ms of CPU).
   */
  returnGradients?: boolean;
  /**
   * Without `update`: only the loss and the extra outputs, from the forward graph's session (`attachForward`; needed:
   * onnxruntime runs every node of a session whatever is fetched, so the gradient graph would cost a whole step).
   */
  lossOnly?: boolean;
}

export interface ResidentStepResult {
  /** Optimizer steps taken before this call (the index of the step just taken when `update`). */
  step: number;
  loss: number;
  gradNorm: number;
  grads: ParamSet;
  outputs: RuntimeOutputs;
  /** Wall time in the worker: the gradient session run, then norm, clipping and update (0 when fused into the run). */
  timing: StepTiming;
}

export interface StepTiming {
  runMs: number;
  updateMs: number;
}

/** Rebuilds an optimizer from its name and resolved config (what crosses the thread boundary and checkpoints). */
export function optimizerFromSpec(name: string, config: object): Optimizer {
  switch (name) {
    case 'adam':
    case 'adamw': {
      const { beta1, beta2, eps, weightDecay, emaDecay } = config as ResolvedAdamConfig;
      return (name === 'adam' ? adam : adamW)({ beta1, beta2, eps, weightDecay, ...(emaDecay === undefined ? {} : { emaDecay }) });
    }
    case 'sgd': {
      const { momentum, nesterov, weightDecay } = config as ResolvedSgdConfig;
      return sgd({ momentum, nesterov, weightDecay });
    }
    default:
      throw new Error(`no optimizer named "${name}"`);
  }
}

function toOrt(feeds: RuntimeFeeds): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new Tensor(t.type, t.data, t.dims);
  return out;
}

function float32Output(results: InferenceSession.ReturnType, name: string): Float32Array {
  const tensor = results[name];
  if (!tensor || tensor.type !== 'float32') throw new Error(`resident trainer: output "${name}" is missing or not float32`);
  return tensor.data as Float32Array;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export class ResidentTrainer {
  private readonly optimizer: Optimizer;
  private readonly params: ParamSet;
  private readonly state: OptimizerState;
  /**
   * Adam/AdamW in TypeScript: parameters and moments live in WebAssembly memory and the update is a SIMD loop that
   * also sums g² (bit-for-bit the JS loop's results; adam-simd.ts). Absent for other optimizers and backends.
   */
  private readonly arena: AdamArena | null = null;
  /**
   * With an arena: fetches that hand onnxruntime the arena's gradient views as preallocated outputs, so the gradients
   * land where the update reads them (onnxruntime-node still returns its own copies, which go to the caller).
   */
  private fetches: Record<string, Tensor | null> | null = null;
  /** The first run checks that onnxruntime did fill the preallocated outputs (else the arena copies from then on). */
  private fetchesChecked = false;
  /** The forward graph's session (loss and extra outputs), for loss-only requests. */
  private forwardSession: InferenceSession | null = null;

  constructor(
    private readonly spec: ResidentTrainerSpec,
    private readonly gradientSession: InferenceSession,
    /** The Adam update graph's session, when the update runs in onnxruntime instead of TypeScript. */
    private readonly adamSession?: InferenceSession,
  ) {
    this.optimizer = optimizerFromSpec(spec.optimizer.name, spec.optimizer.config);
    this.params = spec.params;
    this.state = spec.state;
    if (!spec.fused && !adamSession && (spec.optimizer.name === 'adam' || spec.optimizer.name === 'adamw')) {
      this.arena = AdamArena.create(this.params, this.state);
      if (this.arena) {
        // from here on the resident parameters and moments are the arena's views (fed to onnxruntime as they are)
        this.params = { ...this.arena.params };
        this.state.slots.m = { ...this.arena.m };
        this.state.slots.v = { ...this.arena.v };
        const fetches: Record<string, Tensor | null> = { [spec.lossName]: null };
        for (const name of spec.extraOutputs) fetches[name] = null;
        for (const [name, output] of Object.entries(spec.gradOutputs)) fetches[output] = new Tensor('float32', this.arena.grads[name]!, spec.gradShapes?.[name] ?? spec.shapes[name]!);
        this.fetches = fetches;
      }
    }
  }

  async run(request: ResidentStepRequest): Promise<ResidentStepResult> {
    const { shapes, gradOutputs, lossName, extraOutputs } = this.spec;
    const feeds = toOrt(request.feeds);
    for (const [name, shape] of Object.entries(shapes)) {
      if (name in feeds) throw new Error(`trainer: feeds must not include the parameter "${name}" (the trainer supplies it)`);
      feeds[name] = new Tensor('float32', this.params[name]!, shape);
    }
    if (request.lossOnly && !request.update) return this.lossAt(feeds);
    if (this.spec.fused) return this.runFused(feeds, request);
    const runStarted = performance.now();
    const results = this.fetches ? await this.gradientSession.run(feeds, this.fetches) : await this.gradientSession.run(feeds);
    const updateStarted = performance.now();
    const grads: ParamSet = {};
    for (const [name, output] of Object.entries(gradOutputs)) grads[name] = float32Output(results, output);
    if (this.arena && !this.fetchesChecked) {
      this.fetchesChecked = true;
      if (!Object.entries(grads).every(([name, g]) => sameBits(g, this.arena!.grads[name]!))) this.fetches = null;
    }
    const step = this.state.step;
    let gradNorm: number;
    if (request.update && this.arena) {
      // Without clipping the update's own pass sums g² (same order as globalNorm, so the same norm).
      // The arena already holds the gradients (preallocated outputs); clipping scales the returned copies, which then
      // replace them.
      const clippedNorm = request.maxGradNorm === undefined ? undefined : clipByGlobalNorm(grads, request.maxGradNorm);
      if (clippedNorm !== undefined || !this.fetches) for (const [name, g] of Object.entries(grads)) this.arena.grads[name]!.set(g);
      const sumOfSquares = this.arena.step(this.optimizer.config as ResolvedAdamConfig, this.state, request.lr);
      gradNorm = clippedNorm ?? Math.sqrt(sumOfSquares);
    } else {
      gradNorm = request.maxGradNorm === undefined ? globalNorm(grads) : clipByGlobalNorm(grads, request.maxGradNorm);
      if (request.update) {
        if (this.adamSession) await this.adamUpdate(grads, request.lr);
        else this.optimizer.update(this.params, grads, this.state, request.lr);
      }
    }
    const returned = !request.update || request.returnGradients ? grads : {};
    const timing = { runMs: updateStarted - runStarted, updateMs: performance.now() - updateStarted };
    return { step, loss: float32Output(results, lossName)[0]!, gradNorm, grads: returned, outputs: this.extras(results), timing };
  }

  attachForward(session: InferenceSession): void {
    this.forwardSession = session;
  }

  /** The loss and extra outputs alone, from the forward graph (parameters fed as they are: no update, no gradients). */
  private async lossAt(feeds: Record<string, Tensor>): Promise<ResidentStepResult> {
    if (!this.forwardSession) throw new Error('resident trainer: a loss-only request before the forward session was attached');
    const runStarted = performance.now();
    const results = await this.forwardSession.run(feeds, [this.spec.lossName, ...this.spec.extraOutputs]);
    const timing = { runMs: performance.now() - runStarted, updateMs: 0 };
    return { step: this.state.step, loss: float32Output(results, this.spec.lossName)[0]!, gradNorm: Number.NaN, grads: {}, outputs: this.extras(results), timing };
  }

  private extras(results: InferenceSession.ReturnType): RuntimeOutputs {
    const outputs: RuntimeOutputs = {};
    for (const name of this.spec.extraOutputs) {
      const t = results[name]!;
      outputs[name] = { type: t.type as RuntimeTensorType, dims: [...t.dims], data: t.data as RuntimeOutputs[string]['data'] };
    }
    return outputs;
  }

  /** One session run computes loss, gradients, clipping and the update (onnxruntime runs the whole graph). */
  private async runFused(feeds: Record<string, Tensor>, request: ResidentStepRequest): Promise<ResidentStepResult> {
    const { shapes, gradOutputs, lossName, extraOutputs } = this.spec;
    const { m, v } = this.state.slots as { m: ParamSet; v: ParamSet };
    feeds[LR_INPUT] = new Tensor('float32', Float32Array.of(request.lr), []);
    feeds[STEP_INPUT] = new Tensor('float32', Float32Array.of(this.state.step), []);
    for (const [name, shape] of Object.entries(shapes)) {
      const names = adamGraphNames(name);
      feeds[names.m] = new Tensor('float32', m[name]!, shape);
      feeds[names.v] = new Tensor('float32', v[name]!, shape);
    }
    const step = this.state.step;
    const runStarted = performance.now();
    if (!request.update) {
      const results = await this.gradientSession.run(feeds, [lossName, ...Object.values(gradOutputs), ...extraOutputs]);
      const updateStarted = performance.now();
      const grads: ParamSet = {};
      for (const [name, output] of Object.entries(gradOutputs)) grads[name] = float32Output(results, output);
      const gradNorm = request.maxGradNorm === undefined ? globalNorm(grads) : clipByGlobalNorm(grads, request.maxGradNorm);
      return { step, loss: float32Output(results, lossName)[0]!, gradNorm, grads, outputs: this.extras(results), timing: { runMs: updateStarted - runStarted, updateMs: performance.now() - updateStarted } };
    }
    const updated = Object.keys(shapes).flatMap((name) => {
      const names = adamGraphNames(name);
      return [names.newParam, names.newM, names.newV];
    });
    const results = await this.gradientSession.run(feeds, [lossName, GRAD_NORM_OUTPUT, ...updated, ...extraOutputs]);
    for (const name of Object.keys(shapes)) {
      const names = adamGraphNames(name);
      this.params[name] = float32Output(results, names.newParam);
      m[name] = float32Output(results, names.newM);
      v[name] = float32Output(results, names.newV);
    }
    this.state.step += 1;
    const timing = { runMs: performance.now() - runStarted, updateMs: 0 };
    return { step, loss: float32Output(results, lossName)[0]!, gradNorm: float32Output(results, GRAD_NORM_OUTPUT)[0]!, grads: {}, outputs: this.extras(results), timing };
  }

  /** Copies of the current parameters and optimizer state (for checkpoints and for reading results). */
  snapshot(): { params: ParamSet; state: OptimizerState } {
    const copy = (set: ParamSet): ParamSet => Object.fromEntries(Object.entries(set).map(([k, v]) => [k, v.slice()]));
    const slots = Object.fromEntries(Object.entries(this.state.slots).map(([slot, set]) => [slot, copy(set)]));
    return { params: copy(this.params), state: { step: this.state.step, slots } };
  }

  private async adamUpdate(grads: ParamSet, lr: number): Promise<void> {
    const feeds: Record<string, Tensor> = {
      [LR_INPUT]: new Tensor('float32', Float32Array.of(lr), []),
      [STEP_INPUT]: new Tensor('float32', Float32Array.of(this.state.step), []),
    };
    const { m, v } = this.state.slots as { m: ParamSet; v: ParamSet };
    for (const [name, shape] of Object.entries(this.spec.shapes)) {
      const names = adamGraphNames(name);
      feeds[names.param] = new Tensor('float32', this.params[name]!, shape);
      feeds[names.grad] = new Tensor('float32', grads[name]!, shape);
      feeds[names.m] = new Tensor('float32', m[name]!, shape);
      feeds[names.v] = new Tensor('float32', v[name]!, shape);
    }
    const results = await this.adamSession!.run(feeds);
    for (const name of Object.keys(this.spec.shapes)) {
      const names = adamGraphNames(name);
      this.params[name] = float32Output(results, names.newParam);
      m[name] = float32Output(results, names.newM);
      v[name] = float32Output(results, names.newV);
    }
    this.state.step += 1;
  }
}
