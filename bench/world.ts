// `npm run bench:world [-- --quick] [--pack <dir>] [--lora-steps N] …` (docs/world.md): the paper's Tables 1
// and 3 in the synthetic world (on the world pack once complete, else the tiny pack, unless --pack names one). On test identities never seen in training, one reference image each, every
// personalization method runs, the same prompts are sampled with the same seeds from each method's weights, and the
// world evaluator scores identity similarity, prompt fidelity and reference similarity. Prints the table, writes
// bench/results/world.json and a sample grid PNG (bench/results/world-grid.png).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { loadModelPack } from '../gpu-runner/pack/model-pack.ts';
import { WorldEvaluator } from '../gpu-runner/world/evaluators/evaluator.ts';
import { sampleGrid } from '../gpu-runner/world/benchmark/grid.ts';
import { runWorldBenchmark } from '../gpu-runner/world/benchmark/harness.ts';
import { BENCHMARK_METHODS, FULL_SETTINGS, parseSettings, QUICK_SETTINGS } from '../gpu-runner/world/benchmark/settings.ts';
import { headAccuracyRows, pairedComparison, speedUp, speedUpPerFace, summarize, tableRows } from '../gpu-runner/world/benchmark/summary.ts';
import { encodePng } from '../gpu-runner/world/png.ts';
import { printTable, writeResults } from './report.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    pack: { type: 'string' },
    identities: { type: 'string' },
    split: { type: 'string' },
    prompts: { type: 'string' },
    images: { type: 'string' },
    'sampler-steps': { type: 'string' },
    'finetune-steps': { type: 'string' },
    'lora-steps': { type: 'string' },
    'zero-steps': { type: 'string' },
    'ti-steps': { type: 'string' },
    methods: { type: 'string' },
    relax: { type: 'string' },
    rank: { type: 'string' },
    timesteps: { type: 'string' },
    seed: { type: 'string' },
    threads: { type: 'string' },
    'no-reference-rows': { type: 'boolean', default: false },
    'prior-weight': { type: 'string' },
    'prior-images': { type: 'string' },
    lr: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
  strict: true,
});

const base = flags.quick ? QUICK_SETTINGS : FULL_SETTINGS;

/** `--lr method=value` (repeatable): a method's learning rate. */
function learningRateFlags(entries: readonly string[]): Record<string, number> {
  return Object.fromEntries(
    entries.map((entry) => {
      const match = /^([a-z-]+)=(.+)$/.exec(entry);
      if (!match) throw new Error(`--lr takes method=value (e.g. --lr hyperdreambooth=0.01), got "${entry}"`);
      return [match[1]!, Number(match[2])];
    }),
  );
}
/** `--timesteps uniform` or `--timesteps stratified:F`: the HyperDreamBooth finetune's timesteps. */
function timestepsFlag(value: string | undefined) {
  if (value === undefined) return base.finetuneTimesteps;
  if (value === 'uniform') return { kind: 'uniform' as const };
  const match = /^stratified:([0-9.]+)$/.exec(value);
  if (!match) throw new Error(`--timesteps takes uniform or stratified:F (F in (0, 1], e.g. stratified:0.6), got "${value}"`);
  return { kind: 'stratified' as const, maxFraction: Number(match[1]) };
}
const num = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));
const settings = parseSettings({
  ...base,
  identities: num(flags.identities, base.identities),
  split: flags.split ?? base.split,
  prompts: num(flags.prompts, base.prompts),
  imagesPerPrompt: num(flags.images, base.imagesPerPrompt),
  samplerSteps: num(flags['sampler-steps'], base.samplerSteps),
  seed: num(flags.seed, base.seed),
  methods: flags.methods ? flags.methods.split(',') : base.methods,
  steps: {
    hyperdreambooth: num(flags['finetune-steps'], base.steps.hyperdreambooth),
    'lidb-zero': num(flags['zero-steps'], base.steps['lidb-zero']),
    'dreambooth-lora': num(flags['lora-steps'], base.steps['dreambooth-lora']),
    'textual-inversion': num(flags['ti-steps'], base.steps['textual-inversion']),
  },
  relax: { mode: flags.relax ?? base.relax.mode, rank: num(flags.rank, base.relax.rank) },
  finetuneTimesteps: timestepsFlag(flags.timesteps),
  learningRates: { ...base.learningRates, ...learningRateFlags(flags.lr ?? []) },
  priorWeight: num(flags['prior-weight'], base.priorWeight),
  priorImages: num(flags['prior-images'], base.priorImages),
  referenceRows: !flags['no-reference-rows'],
  ...(flags.threads ? { threads: Number(flags.threads) } : {}),
});

const log = (line: string) => console.error(`[bench:world] ${line}`);
const started = performance.now();
const pack = await loadModelPack(flags.pack, (warning) => log(`warning: ${warning}`));
log(`pack ${pack.id} (${pack.dir}), ${pack.model.resolution} px, hypernetwork ${pack.hypernetwork}; methods ${settings.methods.join(', ')} of ${BENCHMARK_METHODS.join(', ')}`);
const evaluator = await WorldEvaluator.open();
const result = await runWorldBenchmark({ pack, evaluator, settings, log });
await evaluator.close();

const rows = summarize(result);
const ratio = speedUp(rows);
const perFace = speedUpPerFace(result);
const paired = pairedComparison(result, 'hyperdreambooth', 'dreambooth-lora');
const mode = flags.quick ? 'quick' : 'full';
printTable(
  `bench:world (${mode}) pack ${pack.id}: ${settings.identities} ${settings.split.toUpperCase()} identities × ${settings.prompts} prompts × ${settings.imagesPerPrompt} images, ${settings.scheduler} ${settings.samplerSteps} steps, CFG ${settings.guidanceScale}`,
  tableRows(rows),
);
printTable('per evaluator head: share of images where the head reads the truth (id: the identity\'s attribute; ctx: what the prompt asked for)', headAccuracyRows(rows));
if (ratio) {
  console.log(`\nHyperDreamBooth vs DreamBooth-LoRA (${settings.steps['dreambooth-lora']} steps): ${ratio.total.toFixed(1)}× less wall time (${perFace ? `${perFace.min.toFixed(1)}–${perFace.max.toFixed(1)}× per face` : 'no per-face pairs'}), ${ratio.optimizerSteps.toFixed(1)}× less optimizer time (paper: 25×, target ≥ 30×)`);
}

if (paired) {
  const signed = (s: { mean: number; sd: number }) => `${s.mean >= 0 ? '+' : ''}${s.mean.toFixed(3)} ± ${s.sd.toFixed(3)}`;
  console.log(`HyperDreamBooth − DreamBooth-LoRA per face (paired, ${paired.identity.n} faces): identity ${signed(paired.identity)}, fidelity ${signed(paired.fidelity)}; identity ≥ on ${paired.identityWins} of ${paired.identity.n} faces`);
}

const grid = sampleGrid(result);
// `--out NAME`: bench/results/NAME.json and NAME-grid.png (e.g. a run with prior preservation beside the default one).
const outName = flags.out ?? 'world';
if (!/^[a-z0-9-]+$/.test(outName)) throw new Error(`--out must be a file stem of a-z, 0-9 and '-', got "${outName}"`);
const gridPath = join(dirname(fileURLToPath(import.meta.url)), 'results', `${outName}-grid.png`);
const jsonPath = writeResults(outName, {
  mode,
  pack: { id: pack.id, sha256: pack.sha256, resolution: pack.model.resolution, hypernetwork: pack.hypernetwork },
  settings,
  identityIds: result.identityIds,
  prompts: result.prompts.map((p) => p.text),
  rows,
  speedUp: ratio ? { ...ratio, perFace } : null,
  paired,
  runOrder: result.runOrder,
  outcomes: result.outcomes.map(({ subject, scores, runs }) => ({ subject, runs, scores })),
  grid: { file: `${outName}-grid.png`, rows: grid.rows, columns: grid.columns },
  wallSeconds: (performance.now() - started) / 1000,
});
writeFileSync(gridPath, await encodePng(grid.image));
console.log(`\nwrote ${jsonPath} and ${gridPath} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
await shutdownSharedSessionHost();
