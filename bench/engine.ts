// `npm run bench:engine`: what a training step costs relative to a forward pass on the ONNX engine.
// Cases: (a) an MLP, (b) a block shaped like one SD 1.5 down block (ResNet + transformer + downsampler, GroupNorm as
// reduce steps), (c) a LoRA-only train step on that block. Forward and train step both run through the session
// worker (the product's path); the gradient-graph run alone is also timed in-process and profiled by op type, so a
// missed target can be traced to the rules that cost the most. trainStepCpuRatio: the same forward and train step with
// one non-spinning intra-op thread, in process CPU time (the ratio least moved by load on a shared machine).
// Flags: --quick (fewer repeats), --no-profile, --only=a|b|c (one case), --top=N (costliest gradient-graph nodes listed).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism as cpuCount, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  add,
  attention,
  conv2d,
  geglu,
  grad,
  Graph,
  groupNorm,
  layerNorm,
  linear,
  matmul,
  mseLoss,
  mul,
  reduceSum,
  reshape,
  serializeModel,
  silu,
  tensor,
  transpose,
  unsqueeze,
  gelu,
  type Value,
} from '../gpu-runner/onnx/index.ts';
import { adamW } from '../gpu-runner/onnx/optim/adam.ts';
import { constantSchedule } from '../gpu-runner/onnx/optim/schedule.ts';
import { createTrainer } from '../gpu-runner/onnx/training/trainer.ts';
import type { StepTiming } from '../gpu-runner/onnx/runtime/resident-trainer.ts';
import type { ParamSet } from '../gpu-runner/onnx/optim/types.ts';
import { INTRA_OP_SPINNING_ENV } from '../gpu-runner/onnx/runtime/session-cache.ts';
import { SessionHost } from '../gpu-runner/onnx/runtime/session-host.ts';
import { float32Tensor, type RuntimeFeeds } from '../gpu-runner/onnx/runtime/tensor.ts';
import { printTable, writeResults, type Row } from './report.ts';

const QUICK = process.argv.includes('--quick');
const PROFILE = !process.argv.includes('--no-profile');
/** `--only=b` measures one case (a, b or c), skipping the optimizer table. */
const ONLY = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
const TIMING = QUICK ? { warmup: 1, repeats: 3 } : { warmup: 2, repeats: 7 };
/**
 * The target (docs/targets.md): a train step costs at most 3 forward passes (the classic backward ≈ 2× forward
 * estimate).
 */
const TARGET_RATIO = 3;
const CEILING_SIZE = 1024;
const PROFILED_RUNS = 3;
/** Profiled runs not counted: the first run pays first-touch page faults of every activation and gradient buffer. */
const PROFILE_WARMUP_RUNS = 1;
const TOP_OPS = 8;
/** `--top=N`: how many of the costliest gradient-graph nodes to list (default 10). */
const TOP_NODES = Number(process.argv.find((arg) => arg.startsWith('--top='))?.slice('--top='.length) ?? 10);

// ---------- deterministic initial values ----------

function uniform(count: number, seed: number, scale: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 31 - 1) * scale;
  });
}

interface BenchGraph {
  graph: Graph;
  loss: Value;
  /** Trainable inputs and their values. */
  params: ParamSet;
  /** Data inputs (batch, conditioning, target). */
  feeds: RuntimeFeeds;
}

/** Collects trainable graph inputs with Kaiming-uniform-like values (scale 1/√fan_in), or constants for norms. */
class ParamFactory {
  readonly params: ParamSet = {};
  private seed = 1;
  constructor(
    private readonly g: Graph,
    private readonly trainable: boolean,
  ) {}
  weight(name: string, shape: number[], fanIn = shape.slice(1).reduce((a, b) => a * b, 1)): Value {
    return this.make(name, shape, uniform(shape.reduce((a, b) => a * b, 1), this.seed++, 1 / Math.sqrt(fanIn)));
  }
  filled(name: string, shape: number[], value: number): Value {
    return this.make(name, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value));
  }
  private make(name: string, shape: number[], data: Float32Array): Value {
    if (!this.trainable) return this.g.param(name, tensor('float32', shape, data));
    this.params[name] = data;
    return this.g.input(name, 'float32', shape);
  }
}

function dataInput(g: Graph, feeds: RuntimeFeeds, name: string, shape: number[], seed: number): Value {
  feeds[name] = float32Tensor(uniform(shape.reduce((a, b) => a * b, 1), seed, 1), shape);
  return g.input(name, 'float32', shape);
}

// ---------- (a) MLP ----------

const MLP = { batch: 256, widths: [1024, 2048, 2048, 1024] };

/** `train`: the weights are trainable graph inputs; `inference`: the same values baked in as initializers. */
type BuildMode = 'train' | 'inference';

function buildMlp(mode: BuildMode): BenchGraph {
  const g = new Graph('bench_mlp');
  const p = new ParamFactory(g, mode === 'train');
  const feeds: RuntimeFeeds = {};
  let h = dataInput(g, feeds, 'x', [MLP.batch, MLP.widths[0]!], 101);
  for (let i = 1; i < MLP.widths.length; i++) {
    const [fanIn, fanOut] = [MLP.widths[i - 1]!, MLP.widths[i]!];
    h = linear(h, p.weight(`layers.${i - 1}.weight`, [fanOut, fanIn]), p.weight(`layers.${i - 1}.bias`, [fanOut], fanIn));
    if (i < MLP.widths.length - 1) h = gelu(h);
  }
  const target = dataInput(g, feeds, 'target', [MLP.batch, MLP.widths.at(-1)!], 102);
  return { graph: g, loss: mseLoss(h, target), params: p.params, feeds };
}

// ---------- (b)/(c) an SD 1.5 down block ----------

/**
 * SD 1.5 `down_blocks.1` at 256 px (latent 32², so 16² here): ResnetBlock2D 320→640 with time embedding, a
 * Transformer2DModel (8 heads of 80, cross-attention to a 77×768 CLIP context, GEGLU feed-forward ×4), and the
 * stride-2 downsampler. Parameter names follow diffusers so the shapes are checkable against the checkpoint.
 */
const BLOCK = { inChannels: 320, channels: 640, size: 16, groups: 32, heads: 8, temb: 1280, contextLength: 77, contextDim: 768, ffMult: 4 };
const LORA_RANK = 4;

interface LoraOptions {
  rank: number;
  factory: ParamFactory;
}

function buildDownBlock(mode: BuildMode, lora?: { rank: number }): BenchGraph {
  const { inChannels: cin, channels: c, size, groups, heads, temb: tembDim, contextLength, contextDim, ffMult } = BLOCK;
  const g = new Graph(lora ? 'bench_down_block_lora' : 'bench_down_block');
  // With LoRA only the adapters are trainable; the base weights are frozen initializers.
  const base = new ParamFactory(g, !lora && mode === 'train');
  const loraFactory: LoraOptions | undefined = lora ? { rank: lora.rank, factory: new ParamFactory(g, mode === 'train') } : undefined;
  const feeds: RuntimeFeeds = {};
  const x = dataInput(g, feeds, 'sample', [1, cin, size, size], 201);
  const temb = dataInput(g, feeds, 'temb', [1, tembDim], 202);
  const context = dataInput(g, feeds, 'encoder_hidden_states', [1, contextLength, contextDim], 203);

  const norm = (name: string, v: Value, ch: number, eps = 1e-5) => groupNorm(v, groups, base.filled(`${name}.weight`, [ch], 1), base.filled(`${name}.bias`, [ch], 0), eps);
  const conv = (name: string, v: Value, cout: number, cinn: number, k: number, stride = 1) =>
    conv2d(v, base.weight(`${name}.weight`, [cout, cinn, k, k]), base.weight(`${name}.bias`, [cout], cinn * k * k), { padding: (k - 1) / 2, stride });
  /** linear with an optional LoRA branch: x·Wᵀ + (x·Aᵀ)·Bᵀ (Hu et al. 2021, eq. 3; B starts at zero in training, small here so gradients reach A). */
  const proj = (name: string, v: Value, out: number, inn: number, bias: boolean) => {
    let y = linear(v, base.weight(`${name}.weight`, [out, inn]), bias ? base.weight(`${name}.bias`, [out], inn) : undefined);
    if (loraFactory) {
      const down = loraFactory.factory.weight(`${name}.lora.down.weight`, [loraFactory.rank, inn]);
      const up = loraFactory.factory.weight(`${name}.lora.up.weight`, [out, loraFactory.rank], loraFactory.rank * 64);
      y = add(y, linear(linear(v, down), up));
    }
    return y;
  };

  // resnets.0
  let h = conv('resnets.0.conv1', silu(norm('resnets.0.norm1', x, cin)), c, cin, 3);
  const t = proj('resnets.0.time_emb_proj', silu(temb), c, tembDim, true);
  h = add(h, unsqueeze(t, [2, 3]));
  h = conv('resnets.0.conv2', silu(norm('resnets.0.norm2', h, c)), c, c, 3);
  h = add(conv('resnets.0.conv_shortcut', x, c, cin, 1), h);

  // attentions.0 (Transformer2DModel with one BasicTransformerBlock; SD 1.5 uses 1×1 conv proj_in/proj_out)
  const residual = h;
  let s = conv('attentions.0.proj_in', norm('attentions.0.norm', h, c, 1e-6), c, c, 1);
  s = transpose(reshape(s, [1, c, size * size]), [0, 2, 1]);
  const tb = 'attentions.0.transformer_blocks.0';
  const ln = (name: string, v: Value) => layerNorm(v, base.filled(`${name}.weight`, [c], 1), base.filled(`${name}.bias`, [c], 0));
  const attn = (name: string, v: Value, kv: Value, kvDim: number) => {
    const q = proj(`${name}.to_q`, v, c, c, false);
    const k = proj(`${name}.to_k`, kv, c, kvDim, false);
    const vv = proj(`${name}.to_v`, kv, c, kvDim, false);
    return proj(`${name}.to_out.0`, attention(q, k, vv, { heads }), c, c, true);
  };
  let n = ln(`${tb}.norm1`, s);
  s = add(attn(`${tb}.attn1`, n, n, c), s);
  n = ln(`${tb}.norm2`, s);
  s = add(attn(`${tb}.attn2`, n, context, contextDim), s);
  n = ln(`${tb}.norm3`, s);
  const inner = c * ffMult;
  const ff = geglu(linear(n, base.weight(`${tb}.ff.net.0.proj.weight`, [2 * inner, c]), base.weight(`${tb}.ff.net.0.proj.bias`, [2 * inner], c)));
  s = add(linear(ff, base.weight(`${tb}.ff.net.2.weight`, [c, inner]), base.weight(`${tb}.ff.net.2.bias`, [c], inner)), s);
  s = reshape(transpose(s, [0, 2, 1]), [1, c, size, size]);
  h = add(conv('attentions.0.proj_out', s, c, c, 1), residual);

  // downsamplers.0
  h = conv('downsamplers.0.conv', h, c, c, 3, 2);
  const target = dataInput(g, feeds, 'target', [1, c, size / 2, size / 2], 204);
  const params = lora ? loraFactory!.factory.params : base.params;
  return { graph: g, loss: mseLoss(h, target), params, feeds };
}

// ---------- FLOP counting (matrix products and convolutions; elementwise work is not counted) ----------

function staticDims(g: Graph, name: string): number[] {
  return g.value(name).staticShape;
}

function countFlops(g: Graph): number {
  let flops = 0;
  for (const node of g.nodes) {
    const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
    if (node.op === 'MatMul') {
      const a = staticDims(g, node.inputs[0]!);
      flops += 2 * size(staticDims(g, node.outputs[0]!)) * a.at(-1)!;
    } else if (node.op === 'Gemm') {
      const a = staticDims(g, node.inputs[0]!);
      const k = node.attrs.transA ? a[0]! : a[1]!;
      flops += 2 * size(staticDims(g, node.outputs[0]!)) * k;
    } else if (node.op === 'Conv') {
      const w = staticDims(g, node.inputs[1]!);
      flops += 2 * size(staticDims(g, node.outputs[0]!)) * size(w.slice(1));
    } else if (node.op === 'ConvTranspose') {
      const w = staticDims(g, node.inputs[1]!);
      flops += 2 * size(staticDims(g, node.inputs[0]!)) * size(w.slice(1));
    }
  }
  return flops;
}

// ---------- profiling ----------

interface OpShare {
  op: string;
  ms: number;
  share: number;
}

interface NodeCost {
  node: string;
  op: string;
  inputs: string;
  ms: number;
}

interface Profile {
  byOp: OpShare[];
  topNodes: NodeCost[];
}

interface ProfileEvent {
  cat?: string;
  ts?: number;
  dur?: number;
  name?: string;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

/**
 * Runs the model with onnxruntime's profiler and sums kernel time per op type and per node (ms per run) over
 * PROFILED_RUNS runs after PROFILE_WARMUP_RUNS uncounted ones.
 */
async function profile(model: Uint8Array, feeds: RuntimeFeeds): Promise<Profile> {
  const dir = mkdtempSync(join(tmpdir(), 'hdb-bench-profile-'));
  try {
    // One thread: per-kernel times then add up to compute cost, undistorted by thread-pool spinning on a busy machine.
    const session = await InferenceSession.create(model, { enableProfiling: true, profileFilePrefix: join(dir, 'profile'), graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
    const ortFeeds = toOrtFeeds(feeds);
    for (let i = 0; i < PROFILE_WARMUP_RUNS + PROFILED_RUNS; i++) await session.run(ortFeeds);
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) return { byOp: [], topNodes: [] };
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as ProfileEvent[];
    const runEnds = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => (e.ts ?? 0) + (e.dur ?? 0)).sort((a, b) => a - b);
    const countedFrom = runEnds[PROFILE_WARMUP_RUNS - 1] ?? 0;
    const byOp = new Map<string, number>();
    const byNode = new Map<string, NodeCost>();
    for (const event of events) {
      if (event.cat !== 'Node' || !event.name?.endsWith('_kernel_time') || !event.args?.op_name || (event.ts ?? 0) < countedFrom) continue;
      const op = event.args.op_name;
      const us = event.dur ?? 0;
      byOp.set(op, (byOp.get(op) ?? 0) + us);
      const node = event.name.slice(0, -'_kernel_time'.length);
      const inputs = (event.args.input_type_shape ?? []).map((entry) => `[${Object.values(entry)[0]?.join('×') ?? ''}]`).join(' ');
      const cost = byNode.get(node) ?? { node, op, inputs, ms: 0 };
      cost.ms += us / 1000 / PROFILED_RUNS;
      byNode.set(node, cost);
    }
    const total = [...byOp.values()].reduce((a, b) => a + b, 0);
    return {
      byOp: [...byOp.entries()].map(([op, us]) => ({ op, ms: us / 1000 / PROFILED_RUNS, share: us / total })).sort((a, b) => b.ms - a.ms),
      topNodes: [...byNode.values()].sort((a, b) => b.ms - a.ms).slice(0, TOP_NODES),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function toOrtFeeds(feeds: RuntimeFeeds): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.type, v.data, v.dims)]));
}

// ---------- measurements ----------

async function matmulCeiling(host: SessionHost): Promise<{ gflops: number; inProcessGflops: number }> {
  const g = new Graph('ceiling');
  const a = g.input('a', 'float32', [CEILING_SIZE, CEILING_SIZE]);
  const b = g.input('b', 'float32', [CEILING_SIZE, CEILING_SIZE]);
  g.output(matmul(a, b), 'c');
  const bytes = serializeModel(g);
  const count = CEILING_SIZE * CEILING_SIZE;
  const feeds = { a: float32Tensor(uniform(count, 1, 1), [CEILING_SIZE, CEILING_SIZE]), b: float32Tensor(uniform(count, 2, 1), [CEILING_SIZE, CEILING_SIZE]) };
  const flops = 2 * CEILING_SIZE ** 3;
  const runner = await host.open(bytes, { executionProvider: 'cpu' });
  const session = await InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
  const ortFeeds = toOrtFeeds(feeds);
  const { viaWorker, inProcess } = await interleavedMedians({ viaWorker: () => runner.run(feeds), inProcess: () => session.run(ortFeeds) });
  await runner.close();
  await session.release();
  return { gflops: flops / viaWorker / 1e6, inProcessGflops: flops / inProcess / 1e6 };
}

interface CaseResult {
  row: Row;
  profile?: { forward: Profile; gradient: Profile };
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/**
 * Medians of several timed functions measured round-robin (one call of each per round), so that load from other
 * processes on the shared machine hits every column alike and the ratios stay meaningful.
 */
async function interleavedMedians<K extends string>(fns: Record<K, () => unknown>): Promise<Record<K, number>> {
  const keys = Object.keys(fns) as K[];
  for (let i = 0; i < TIMING.warmup; i++) for (const key of keys) await fns[key]();
  const times = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < TIMING.repeats; i++) {
    for (const key of keys) {
      const startedAt = performance.now();
      await fns[key]();
      times[key].push(performance.now() - startedAt);
    }
  }
  return Object.fromEntries(keys.map((key) => [key, median(times[key])])) as Record<K, number>;
}

/**
 * Medians of the process CPU time (user + system) each function takes, round-robin like `interleavedMedians`. Meant for
 * single-threaded sessions with nothing else running in the process: CPU time barely moves when other processes load
 * the machine (wall time does, by whatever share of the cores they take).
 */
async function interleavedCpuMedians<K extends string>(fns: Record<K, () => unknown>): Promise<Record<K, number>> {
  const keys = Object.keys(fns) as K[];
  for (let i = 0; i < TIMING.warmup; i++) for (const key of keys) await fns[key]();
  const times = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < TIMING.repeats; i++) {
    for (const key of keys) {
      const before = process.cpuUsage();
      await fns[key]();
      const used = process.cpuUsage(before);
      times[key].push((used.user + used.system) / 1000);
    }
  }
  return Object.fromEntries(keys.map((key) => [key, median(times[key])])) as Record<K, number>;
}

/**
 * Forward: the inference graph (weights as initializers) through the worker, only the batch crossing threads.
 * Train step: the trainer (weights resident in the worker) running the gradient graph and the Adam update.
 * In-process columns time the two graphs without the worker, with the weights fed as inputs: pure compute.
 */
async function measureCase(name: string, build: (mode: BuildMode) => BenchGraph, host: SessionHost): Promise<CaseResult> {
  const inference = build('inference');
  inference.graph.output(inference.loss, 'loss');
  const forwardRunner = await host.open(serializeModel(inference.graph), { executionProvider: 'cpu' });

  const train = build('train');
  const trainerWith = (optimizerBackend: 'typescript' | 'fused') =>
    createTrainer({
      graph: train.graph,
      loss: train.loss,
      params: train.params,
      optimizer: adamW(),
      schedule: constantSchedule(1e-5),
      optimizerBackend,
      runner: { host, executionProvider: 'cpu' },
    });
  const trainer = await trainerWith('typescript');
  const fused = await trainerWith('fused');

  // Pure compute, in-process: forward and gradient graphs with the weights as inputs (the gradient graph as the
  // trainer builds it: gradients in their computed layout, no output Reshape copies).
  const gradientGraph = grad(train.graph, { loss: train.loss, wrt: Object.keys(train.params), anyGradientLayout: true });
  train.graph.output(train.loss, 'loss');
  const allFeeds: RuntimeFeeds = { ...train.feeds };
  for (const [param, data] of Object.entries(train.params)) allFeeds[param] = float32Tensor(data, train.graph.value(param).staticShape);
  const forwardBytes = serializeModel(train.graph);
  const gradientBytes = serializeModel(gradientGraph);
  const forwardSession = await InferenceSession.create(forwardBytes, { graphOptimizationLevel: 'all' });
  const gradientSession = await InferenceSession.create(gradientBytes, { graphOptimizationLevel: 'all' });
  const ortFeeds = toOrtFeeds(allFeeds);

  const stepTimings: StepTiming[] = [];
  const ms = await interleavedMedians({
    forward: () => forwardRunner.run(inference.feeds),
    gradientRun: () => trainer.evaluate(train.feeds),
    trainStep: async () => stepTimings.push((await trainer.step(train.feeds)).timing),
    fusedStep: () => fused.step(train.feeds),
    forwardInProcess: () => forwardSession.run(ortFeeds),
    gradientInProcess: () => gradientSession.run(ortFeeds),
  });
  await forwardRunner.close();
  await trainer.close();
  await fused.close();
  await forwardSession.release();
  await gradientSession.release();
  // one intra-op thread that does not spin: the process's CPU time is then the kernels' work
  const singleThread = { graphOptimizationLevel: 'all', intraOpNumThreads: 1, extra: { 'session.intra_op.allow_spinning': '0' } } as const;
  const forwardSingle = await InferenceSession.create(forwardBytes, singleThread);
  const gradientSingle = await InferenceSession.create(gradientBytes, singleThread);
  const cpu = await interleavedCpuMedians({ forward: () => forwardSingle.run(ortFeeds), gradient: () => gradientSingle.run(ortFeeds) });
  await forwardSingle.release();
  await gradientSingle.release();

  const step = await measureStepCpu(inference, build);

  const forwardFlops = countFlops(train.graph);
  const gradientFlops = countFlops(gradientGraph);
  const paramCount = Object.values(train.params).reduce((sum, p) => sum + p.length, 0);
  const row: Row = {
    case: name,
    trainableParams: paramCount,
    forwardMs: ms.forward,
    trainStepMs: ms.trainStep,
    ratio: ms.trainStep / ms.forward,
    gradientRunMs: ms.gradientRun,
    // inside the train step, as the worker timed them: the gradient session run, and the norm and Adam update
    stepRunMs: median(stepTimings.slice(TIMING.warmup).map((t) => t.runMs)),
    stepUpdateMs: median(stepTimings.slice(TIMING.warmup).map((t) => t.updateMs)),
    fusedStepMs: ms.fusedStep,
    fusedRatio: ms.fusedStep / ms.forward,
    forwardInProcessMs: ms.forwardInProcess,
    gradientInProcessMs: ms.gradientInProcess,
    computeRatio: ms.gradientInProcess / ms.forwardInProcess,
    forwardCpuMs: cpu.forward,
    gradientCpuMs: cpu.gradient,
    cpuRatio: cpu.gradient / cpu.forward,
    forwardWorkerCpuMs: step.forward,
    trainStepCpuMs: step.trainStep,
    trainStepCpuRatio: step.trainStep / step.forward,
    forwardGflop: forwardFlops / 1e9,
    gradientGflop: gradientFlops / 1e9,
    // the gradient graph's floor at equal kernel efficiency: its matrix arithmetic over the forward's
    flopRatio: gradientFlops / forwardFlops,
    forwardGflops: forwardFlops / ms.forwardInProcess / 1e6,
    gradientGflops: gradientFlops / ms.gradientInProcess / 1e6,
  };
  if (!PROFILE) return { row };
  return { row, profile: { forward: await profile(forwardBytes, allFeeds), gradient: await profile(gradientBytes, allFeeds) } };
}

/**
 * The product's path (worker sessions, resident trainer, typescript backend) with one intra-op thread that does not
 * spin: process CPU time of a forward run and of a whole train step (gradient run, output copies, update, messages).
 * The train-step ratio least moved by other load on the machine.
 */
async function measureStepCpu(inference: BenchGraph, build: (mode: BuildMode) => BenchGraph): Promise<{ forward: number; trainStep: number }> {
  // the worker reads the spinning setting from its environment, copied when the worker starts
  const previous = process.env[INTRA_OP_SPINNING_ENV];
  process.env[INTRA_OP_SPINNING_ENV] = '0';
  const host = new SessionHost({ cacheDir: null, log: () => undefined });
  if (previous === undefined) delete process.env[INTRA_OP_SPINNING_ENV];
  else process.env[INTRA_OP_SPINNING_ENV] = previous;
  try {
    const options = { executionProvider: 'cpu', intraOpNumThreads: 1 } as const;
    const forward = await host.open(serializeModel(inference.graph), options);
    const train = build('train');
    const trainer = await createTrainer({
      graph: train.graph,
      loss: train.loss,
      params: train.params,
      optimizer: adamW(),
      schedule: constantSchedule(1e-5),
      optimizerBackend: 'typescript',
      runner: { host, ...options },
    });
    const cpu = await interleavedCpuMedians({ forward: () => forward.run(inference.feeds), trainStep: () => trainer.step(train.feeds) });
    await trainer.close();
    await forward.close();
    return cpu;
  } finally {
    await host.shutdown();
  }
}

/**
 * Cost of the Adam update with the state resident in the worker, TypeScript backend (the WebAssembly SIMD loop) vs
 * onnxruntime graph: a trainer on loss = Σ p·x, the update's own time as the worker reports it (norm included).
 * Sets GRAPH_OPTIMIZER_MIN_ELEMENTS.
 */
async function measureOptimizers(host: SessionHost): Promise<Row[]> {
  const rows: Row[] = [];
  for (const elements of [100_000, 1_000_000, 8_000_000]) {
    const perBackend: Record<string, number> = {};
    for (const backend of ['typescript', 'graph'] as const) {
      const g = new Graph('adam_probe');
      const p = g.input('p', 'float32', [elements]);
      const x = g.input('x', 'float32', [elements]);
      const feeds = { x: float32Tensor(uniform(elements, 2, 1), [elements]) };
      const trainer = await createTrainer({
        graph: g,
        loss: reduceSum(mul(p, x)),
        params: { p: uniform(elements, 1, 1) },
        optimizer: adamW(),
        schedule: constantSchedule(1e-4),
        optimizerBackend: backend,
        runner: { host, executionProvider: 'cpu' },
      });
      const updates: number[] = [];
      await interleavedMedians({ step: async () => updates.push((await trainer.step(feeds)).timing.updateMs) });
      await trainer.close();
      perBackend[backend] = median(updates.slice(TIMING.warmup));
    }
    rows.push({
      elements,
      typescriptMs: perBackend.typescript!,
      graphMs: perBackend.graph!,
      typescriptNsPerElement: (perBackend.typescript! * 1e6) / elements,
      graphNsPerElement: (perBackend.graph! * 1e6) / elements,
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const host = new SessionHost({ cacheDir: null, log: () => undefined });
  const loadBefore = loadavg()[0]!;
  try {
    const ceiling = await matmulCeiling(host);
    const cases: [string, (mode: BuildMode) => BenchGraph][] = [
      ['(a) MLP 1024-2048-2048-1024, batch 256', buildMlp],
      ['(b) SD down block (320→640, 16², attn)', (mode) => buildDownBlock(mode)],
      [`(c) LoRA r${LORA_RANK} train step on (b)`, (mode) => buildDownBlock(mode, { rank: LORA_RANK })],
    ];
    const selected = ONLY ? cases.filter(([name]) => name.startsWith(`(${ONLY})`)) : cases;
    if (selected.length === 0) throw new Error(`--only=${ONLY}: no such case (a, b or c)`);
    const results: CaseResult[] = [];
    for (const [name, build] of selected) {
      process.stderr.write(`measuring ${name}…\n`);
      results.push(await measureCase(name, build, host));
    }
    // Single-thread kernel time summed from the profiles: the ratio least disturbed by other load on the machine.
    const kernelMs = (p: Profile) => p.byOp.reduce((sum, op) => sum + op.ms, 0);
    const rows = results.map((r) => ({
      ...r.row,
      ...(r.profile ? { kernelRatio: kernelMs(r.profile.gradient) / kernelMs(r.profile.forward) } : {}),
      ceilingGflops: ceiling.gflops,
      meetsTarget: (r.row.ratio as number) <= TARGET_RATIO,
    }));
    printTable(`ONNX engine: train step vs forward (CPU, medians of ${TIMING.repeats} after ${TIMING.warmup} warm-up; target ratio ≤ ${TARGET_RATIO})`, rows);
    console.log(`MatMul ${CEILING_SIZE}³ ceiling: ${ceiling.gflops.toFixed(1)} GFLOP/s through the worker, ${ceiling.inProcessGflops.toFixed(1)} in-process`);
    const optimizerRows = ONLY ? [] : await measureOptimizers(host);
    if (optimizerRows.length > 0) printTable('AdamW update with state resident in the worker: typescript backend (WebAssembly SIMD loop) vs ONNX graph', optimizerRows);
    if (PROFILE) {
      for (const [i, result] of results.entries()) {
        const { forward, gradient } = result.profile!;
        const byOp = forward.byOp.slice(0, TOP_OPS).map((f) => ({ op: f.op, forwardMs: f.ms, gradientGraphMs: gradient.byOp.find((g) => g.op === f.op)?.ms ?? 0 }));
        for (const g of gradient.byOp.slice(0, TOP_OPS)) if (!byOp.some((row) => row.op === g.op)) byOp.push({ op: g.op, forwardMs: 0, gradientGraphMs: g.ms });
        printTable(`${selected[i]![0]}: kernel time by op type (ms per run)`, byOp.sort((a, b) => b.gradientGraphMs - a.gradientGraphMs));
        printTable(`${selected[i]![0]}: costliest nodes of the gradient graph`, gradient.topNodes.map((n) => ({ ...n })));
      }
    }
    // The machine is shared: the 1-minute load average before and after says how much to trust the absolute numbers.
    const load = { before: loadBefore, after: loadavg()[0]! };
    console.log(`load average (1 min) before/after: ${load.before.toFixed(1)} / ${load.after.toFixed(1)} on ${cpuCount()} cores`);
    const path = writeResults('engine', {
      loadAverage: load,
      timing: TIMING,
      targetRatio: TARGET_RATIO,
      ceiling: { size: CEILING_SIZE, ...ceiling },
      cases: rows,
      optimizers: optimizerRows,
      profiles: results.map((r, i) => ({ case: selected[i]![0], ...r.profile })),
    });
    console.log(`\nwrote ${path}`);
  } finally {
    await host.shutdown();
  }
}

await main();
