// `npm run bench:world-ablation [-- --pack <dir>] [--identities N] …`: the paper's Table 3 (HyperDreamBooth §4.3) in the
// synthetic world, in one run with one evaluator and the same TEST faces, prompts and seeds as `bench:world`:
//   full              the hypernetwork's prediction + the rank-relaxed finetune (HyperDreamBooth)
//   no hypernetwork   the same finetune from ΔW = 0 (the prediction's heads zeroed: "finetune only")
//   hypernetwork only the prediction alone
//   K = 1             the same hypernetwork with one refinement iteration instead of K, with and without the finetune
// Prints the table and writes bench/results/world-ablation.json.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import type { PersonalizationModel } from '../gpu-runner/personalize/model.ts';
import { loadModelPack, type LoadedPack } from '../gpu-runner/pack/model-pack.ts';
import { WorldEvaluator } from '../gpu-runner/world/evaluators/evaluator.ts';
import { runWorldBenchmark } from '../gpu-runner/world/benchmark/harness.ts';
import { type BenchmarkMethod, FULL_SETTINGS, parseSettings } from '../gpu-runner/world/benchmark/settings.ts';
import { summarize, type SummaryRow } from '../gpu-runner/world/benchmark/summary.ts';
import { printTable, writeResults } from './report.ts';

const { values: flags } = parseArgs({
  options: { pack: { type: 'string' }, identities: { type: 'string' }, prompts: { type: 'string' }, images: { type: 'string' }, 'sampler-steps': { type: 'string' }, split: { type: 'string' } },
  strict: true,
});
const num = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));
const base = parseSettings({
  ...FULL_SETTINGS,
  identities: num(flags.identities, FULL_SETTINGS.identities),
  prompts: num(flags.prompts, FULL_SETTINGS.prompts),
  imagesPerPrompt: num(flags.images, FULL_SETTINGS.imagesPerPrompt),
  samplerSteps: num(flags['sampler-steps'], FULL_SETTINGS.samplerSteps),
  split: flags.split ?? FULL_SETTINGS.split,
});

const log = (line: string) => console.error(`[bench:world-ablation] ${line}`);
const started = performance.now();
const pack = await loadModelPack(flags.pack, (warning) => log(`warning: ${warning}`));
const hyper = pack.model.hypernetwork;
if (!hyper || pack.hypernetwork !== 'checkpoint') throw new Error('the ablation needs a pack with a trained hypernetwork checkpoint');

/** The pack with its model's hypernetwork replaced (a new model object: no cached graph or session is shared). */
function withHypernetwork(changes: Partial<NonNullable<PersonalizationModel['hypernetwork']>>): LoadedPack {
  return { ...pack, model: { ...pack.model, hypernetwork: { ...hyper!, ...changes } } };
}
/** Every head's weight and bias zero: A_train = B_train = 0, so the prediction is ΔW = 0 exactly. */
const zeroHeads = new Map([...hyper.params].map(([name, value]) => [name, name.startsWith('heads.') ? new Float32Array(value.length) : value]));

const variants: { name: string; pack: LoadedPack; methods: BenchmarkMethod[]; referenceRows: boolean }[] = [
  { name: 'full', pack, methods: ['hyperdreambooth', 'hyper-only'], referenceRows: true },
  { name: 'no hypernetwork', pack: withHypernetwork({ params: zeroHeads }), methods: ['hyperdreambooth'], referenceRows: false },
  { name: `K = 1 (of ${hyper.config.iterations})`, pack: withHypernetwork({ config: { ...hyper.config, iterations: 1 } }), methods: ['hyperdreambooth', 'hyper-only'], referenceRows: false },
];

const evaluator = await WorldEvaluator.open();
const rows: { variant: string; row: SummaryRow }[] = [];
for (const variant of variants) {
  log(`${variant.name}: ${variant.methods.join(', ')}`);
  const result = await runWorldBenchmark({ pack: variant.pack, evaluator, settings: { ...base, methods: variant.methods, referenceRows: variant.referenceRows }, log });
  for (const row of summarize(result)) rows.push({ variant: variant.name, row });
}
await evaluator.close();

const LABELS: Record<string, string> = { hyperdreambooth: 'hypernetwork + finetune', 'hyper-only': 'hypernetwork only' };
const table = rows.map(({ variant, row }) => ({
  variant: row.label === 'renders' || row.label === 'base-model' ? '–' : variant,
  method: variant === 'no hypernetwork' && row.label === 'hyperdreambooth' ? 'finetune only' : (LABELS[row.label] ?? row.label),
  'identity sim': `${row.identitySimilarity.mean.toFixed(3)} ± ${row.identitySimilarity.sd.toFixed(3)}`,
  'prompt fidelity': `${row.promptFidelity.mean.toFixed(3)} ± ${row.promptFidelity.sd.toFixed(3)}`,
  images: row.identitySimilarity.n,
  'time s (median)': row.medianTotalMs === null ? null : (row.medianTotalMs / 1000).toFixed(2),
}));
printTable(`bench:world-ablation pack ${pack.id}: ${base.identities} ${base.split} identities × ${base.prompts} prompts × ${base.imagesPerPrompt} images (the paper's Table 3)`, table);
const identity = (variant: string, label: string) => rows.find((r) => r.variant === variant && r.row.label === label)?.row.identitySimilarity.mean ?? null;
const full = identity('full', 'hyperdreambooth');
const ordering = {
  fullAtLeastNoHypernetwork: full !== null && full >= identity('no hypernetwork', 'hyperdreambooth')!,
  fullAtLeastHypernetworkOnly: full !== null && full >= identity('full', 'hyper-only')!,
};
console.log(`\nfull ≥ no hypernetwork: ${ordering.fullAtLeastNoHypernetwork}; full ≥ hypernetwork only: ${ordering.fullAtLeastHypernetworkOnly} (the paper's ordering)`);
const path = writeResults('world-ablation', {
  pack: { id: pack.id, sha256: pack.sha256 },
  settings: base,
  rows: rows.map(({ variant, row }) => ({ variant, ...row })),
  ordering,
  wallSeconds: (performance.now() - started) / 1000,
});
console.log(`wrote ${path}`);
await shutdownSharedSessionHost();
