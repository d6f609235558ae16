// The world pack's model card (README.md at the pack root), written from what is in the pack: the files and their
// sizes, each stage's own record (vae/gate.json, card/base-gate.json, the hypernetwork checkpoint's metadata, any
// README.md a stage wrote into its folder) and the sample grid. Nothing in it is typed by hand, so it cannot drift.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsHeader } from '../../io/safetensors.ts';
import { describeTrainingStage, type TrainingStage, trainingStages } from '../../personalize/phase1/training-stages.ts';
import { PACK_HYPERNETWORK_FILE } from '../../pack/write-tiny-pack.ts';
import { PACK_CARD_FOLDER as CARD_FOLDER, packDigest } from '../../pack/model-pack.ts';
import { missingPackFiles, packFiles, WORLD_PACK_ID, WORLD_PACK_MAX_BYTES } from '../../pack/world-pack.ts';

export const BASE_GATE_JSON = 'base-gate.json';
export const BASE_GATE_GRID = 'base-gate-grid.png';
/** A `bench:world` run put into the card by `npm run world:card-bench`. */
export const WORLD_BENCH_JSON = 'world-bench.json';
export const WORLD_BENCH_GRID = 'world-bench-grid.png';
export const WORLD_ABLATION_JSON = 'world-ablation.json';
export const WORLD_CURVE_JSON = 'world-curve.json';
export const WORLD_CURVE_PNG = 'world-curve.png';

interface StatRecord {
  mean: number;
  sd: number;
  n: number;
}
interface WorldBenchRecord {
  measuredAt: string;
  mode: string;
  settings: { identities?: number; prompts?: number; imagesPerPrompt?: number; samplerSteps?: number; guidanceScale?: number; priorWeight?: number };
  speedUp: { total: number; optimizerSteps: number; perFace?: { min: number; max: number } | null } | null;
  rows: { method: string; identitySimilarity: StatRecord; promptFidelity: StatRecord; referenceSimilarity: StatRecord; medianSeconds: number | null; steps: number | null; fileBytes: number | null }[];
  /** HyperDreamBooth − DreamBooth-LoRA per face, where both ran (runs before it was recorded have none). */
  paired?: { identity: StatRecord; fidelity: StatRecord; identityWins: number } | null;
}

function signed(value: StatRecord): string {
  return `${value.mean >= 0 ? '+' : ''}${value.mean.toFixed(3)} ± ${value.sd.toFixed(3)}`;
}

interface HeadRecord {
  readonly name: string;
  readonly group: string;
  readonly accuracy: number;
  readonly chance: number;
  readonly threshold: number;
  readonly lift: number;
  readonly rendersAccuracy?: number;
  readonly gated: boolean;
  readonly passed: boolean;
}

interface BaseGateRecord {
  readonly pack: { readonly sha256: string };
  readonly settings: { readonly identities: number; readonly contexts: number; readonly imagesPerPrompt: number; readonly samplerSteps: number; readonly guidanceScale: number; readonly seed: number };
  readonly rule: { readonly gatedHeads: readonly string[]; readonly passLift: number };
  readonly passed: boolean;
  readonly images: number;
  readonly seconds: number;
  readonly heads: readonly HeadRecord[];
}

interface VaeGateRecord {
  readonly step: number;
  readonly gate: { readonly samples: number; readonly psnrDb: number; readonly hairHueErrorDegrees: number; readonly eyeColourAgreement: number; readonly passed: boolean };
  readonly stored: string;
  readonly scalingFactor: number;
}

function readJson<T>(path: string): T | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : undefined;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

function stageReadme(dir: string, folder: string): string {
  return existsSync(join(dir, folder, 'README.md')) ? ` Details: [\`${folder}/README.md\`](${folder}/README.md).` : '';
}

function vaeSection(dir: string): string[] {
  const gate = readJson<VaeGateRecord>(join(dir, 'vae', 'gate.json'));
  if (!gate) return ['- **VAE** (`vae/`): not in the pack yet.'];
  const g = gate.gate;
  return [
    `- **VAE** (\`vae/\`, AutoencoderKL ×4, 32 px → 8 × 8 × 4 latents, ${gate.stored}, scaling factor ${gate.scalingFactor.toFixed(5)}): trained from scratch by this repository's engine on renders of TRAIN identities (\`npm run world:train-vae\`, exported at step ${gate.step} of its last run; runs it started from are in its own card).${stageReadme(dir, 'vae')}`,
    `  Gate on ${g.samples} held-out TEST renders: hair hue error ${g.hairHueErrorDegrees.toFixed(1)}° (needs < 15°), eye-colour agreement ${pct(g.eyeColourAgreement)} (needs > 90%), PSNR ${g.psnrDb.toFixed(2)} dB → **${g.passed ? 'passed' : 'FAILED'}**.`,
  ];
}

function baseSection(dir: string, digest: string): string[] {
  const present = existsSync(join(dir, 'unet', 'diffusion_pytorch_model.safetensors')) && existsSync(join(dir, 'text_encoder', 'model.safetensors'));
  if (!present) return ['- **Base model** (`unet/`, `text_encoder/`): not in the pack yet.'];
  const gate = readJson<BaseGateRecord>(join(dir, CARD_FOLDER, BASE_GATE_JSON));
  const unet = readJson<{ block_out_channels: number[]; layers_per_block: number }>(join(dir, 'unet', 'config.json'))!;
  const text = readJson<{ hidden_size: number; num_hidden_layers: number; vocab_size: number }>(join(dir, 'text_encoder', 'config.json'))!;
  const lines = [
    `- **Base model** (\`unet/\`: UNet2DConditionModel with SD 1.5's block types at widths (${unet.block_out_channels.join(', ')}), ${unet.layers_per_block} resnet per level; \`text_encoder/\`: CLIP text model, width ${text.hidden_size}, ${text.num_hidden_layers} layers, ${text.vocab_size} tokens): trained jointly from scratch on captioned renders of TRAIN identities (\`npm run world:train-base\`).${stageReadme(dir, 'unet')}${stageReadme(dir, 'text_encoder')}`,
  ];
  const meta = readSafetensorsHeader(join(dir, 'unet', 'diffusion_pytorch_model.safetensors')).metadata;
  if (meta.step) {
    lines.push(`  Exported from training step ${meta.step}${meta.weights ? `, ${meta.weights} weights` : ''} (\`npm run world:export-base\`).${meta.settings ? ` Settings: \`${meta.settings}\`.` : ''}`);
  }
  if (!gate) return [...lines, '  Gate: not measured yet (`npm run world:base-gate`).'];
  const s = gate.settings;
  lines.push(
    `  Gate (\`npm run world:base-gate\`): ${gate.images} images of held-out prompts (${s.identities} TEST identities described in words × ${s.contexts} contexts × ${s.imagesPerPrompt}), DDIM ${s.samplerSteps} steps, CFG ${s.guidanceScale}, seed ${s.seed}, read by the world evaluator; a gated head (${gate.rule.gatedHeads.join(', ')}) passes when (accuracy − chance) / (renders − chance) ≥ ${gate.rule.passLift}, where renders is what the evaluator reads on the world's own renders of the same prompts → **${gate.passed ? 'passed' : 'FAILED'}** (${gate.seconds.toFixed(0)} s).`,
    '',
    '  | head | group | accuracy | chance | needed | renders (ceiling) | verdict |',
    '  |---|---|---|---|---|---|---|',
    ...gate.heads.map(
      (h) => `  | ${h.name} | ${h.group} | ${pct(h.accuracy)} | ${pct(h.chance)} | ${h.gated ? pct(h.threshold) : '–'} | ${h.rendersAccuracy === undefined ? '–' : pct(h.rendersAccuracy)} | ${h.gated ? (h.passed ? 'pass' : 'FAIL') : 'reported'} |`,
    ),
  );
  lines.push(
    '',
    gate.pack.sha256 === digest
      ? `  Measured on these weights (pack digest \`${digest.slice(0, 16)}…\`).`
      : `  **Stale**: measured on pack digest \`${gate.pack.sha256.slice(0, 16)}…\`, the pack is now \`${digest.slice(0, 16)}…\`; rerun the gate.`,
  );
  return lines;
}

/** "3500 steps at …, then 3500 steps at …": every phase-1 run the checkpoint went through, in order. */
function stagesInWords(stages: readonly TrainingStage[]): string {
  if (stages.length === 0) return 'training not recorded';
  return stages.map((stage, i) => `${i === 0 ? '' : 'then '}${describeTrainingStage(stage)}`).join(', ');
}

function hypernetworkSection(dir: string): string[] {
  const path = join(dir, PACK_HYPERNETWORK_FILE);
  if (!existsSync(path)) return ['- **Hypernetwork** (`hypernetwork/`): not in the pack yet; the runner then uses an untrained one (ΔW ≈ 0; the 40-step finetune does the work).'];
  const meta = readSafetensorsHeader(path).metadata;
  if (meta.trained === 'false') return ['- **Hypernetwork** (`hypernetwork/model.safetensors`): untrained (heads N(0, 1e−3), ΔW ≈ 0) until phase 1 trains it.'];
  if (Number(meta.views ?? 0) > 0) {
    return [
      `- **Hypernetwork** (\`hypernetwork/model.safetensors\`): phase 1 on ${meta.identities ?? '?'} TRAIN identities${Number(meta.extra_identities ?? 0) > 0 ? ` and ${meta.extra_identities} more in no split of the world (never a validation or test face)` : ''}, ${meta.inputs ?? '?'} input photos and ${meta.views} captioned views each (never a benchmark prompt's context), the diffusion loss on a view (its target blends the base model's prediction under the view's description, weight w, with the sampled noise, 1 − w), from an encoder pretrained on attribute labels; ${stagesInWords(trainingStages(meta))}. Why and how: [\`docs/hypernetwork.md\`](../../../docs/hypernetwork.md); commands: [\`personalize/phase1/README.md\`](../../personalize/phase1/README.md).`,
    ];
  }
  return [
    `- **Hypernetwork** (\`hypernetwork/model.safetensors\`): phase 1 (\`npm run train:preoptimize\`, \`npm run train:hypernetwork\`) on ${meta.identities ?? '?'} TRAIN identities, one reference render each: ${meta.steps ?? '?'} steps, loss α · diffusion + β · ‖θ̂ − θ*‖² with β = ${meta.beta ?? '?'}. The run, its pilots and what the prediction buys: [\`personalize/phase1/README.md\`](../../personalize/phase1/README.md).`,
  ];
}

function benchSection(dir: string): string[] {
  const bench = readJson<WorldBenchRecord>(join(dir, CARD_FOLDER, WORLD_BENCH_JSON));
  if (!bench) return [];
  const s = bench.settings;
  const stat = (x: StatRecord) => `${x.mean.toFixed(3)} ± ${x.sd.toFixed(3)}`;
  return [
    '## Personalization on held-out faces (`npm run bench:world`)',
    '',
    `${bench.mode} run of ${bench.measuredAt.slice(0, 10)}: ${s.identities} TEST identities (never trained on), one reference photo each, ${s.prompts} prompts × ${s.imagesPerPrompt} images, DDIM ${s.samplerSteps}, CFG ${s.guidanceScale}${s.priorWeight ? `, prior preservation λ ${s.priorWeight}` : ''}; scores by the world evaluator (mean ± sd over images). Times on the shared 2-core CPU.`,
    '',
    '| method | identity similarity | prompt fidelity | reference similarity | steps | time (median) | file (fp16) |',
    '|---|---|---|---|---|---|---|',
    ...bench.rows.map(
      (r) =>
        `| ${r.method} | ${stat(r.identitySimilarity)} | ${stat(r.promptFidelity)} | ${stat(r.referenceSimilarity)} | ${r.steps ?? '–'} | ${r.medianSeconds == null ? '–' : `${r.medianSeconds.toFixed(2)} s`} | ${r.fileBytes == null ? '–' : `${(r.fileBytes / 1000).toFixed(1)} KB`} |`,
    ),
    '',
    ...(bench.speedUp ? [`HyperDreamBooth took ${bench.speedUp.total.toFixed(1)}× less wall time than DreamBooth-LoRA in this run (ratio of medians${bench.speedUp.perFace ? `; ${bench.speedUp.perFace.min.toFixed(1)}–${bench.speedUp.perFace.max.toFixed(1)}× per face` : ''}).`, ''] : []),
    ...(bench.paired
      ? [
          `Per face, HyperDreamBooth − DreamBooth-LoRA (mean ± sd over ${bench.paired.identity.n} faces): identity ${signed(bench.paired.identity)}, prompt fidelity ${signed(bench.paired.fidelity)}; identity higher or equal on ${bench.paired.identityWins} of ${bench.paired.identity.n} faces.`,
          '',
        ]
      : []),
    ...(existsSync(join(dir, CARD_FOLDER, WORLD_BENCH_GRID))
      ? ['Per method a block: each TEST identity\'s reference photo, then one image per prompt (rows `renders` and `base-model` are the ceiling and the floor).', '', `![bench:world sample grid](${CARD_FOLDER}/${WORLD_BENCH_GRID})`, '']
      : []),
  ];
}

interface AblationRecord {
  readonly measuredAt: string;
  readonly settings: { identities: number; prompts: number; imagesPerPrompt: number };
  readonly rows: readonly { variant: string; method: string; identitySimilarity: StatRecord; promptFidelity: StatRecord; medianSeconds: number | null }[];
}

/** The paper's Table 3 in the world (`npm run bench:world-ablation`). */
function ablationSection(dir: string): string[] {
  const ablation = readJson<AblationRecord>(join(dir, CARD_FOLDER, WORLD_ABLATION_JSON));
  if (!ablation) return [];
  const stat = (x: StatRecord) => `${x.mean.toFixed(3)} ± ${x.sd.toFixed(3)}`;
  const name = (r: AblationRecord['rows'][number]) =>
    r.method === 'renders' || r.method === 'base-model' ? r.method : r.variant === 'no hypernetwork' ? 'finetune only (no hypernetwork)' : `${r.method === 'hyper-only' ? 'hypernetwork only' : 'hypernetwork + finetune'}${r.variant === 'full' ? '' : `, ${r.variant}`}`;
  return [
    "## The paper's Table 3 in this world (`npm run bench:world-ablation`)",
    '',
    `Run of ${ablation.measuredAt.slice(0, 10)}, the same TEST faces, prompts, seeds and evaluator as bench:world (${ablation.settings.identities} identities × ${ablation.settings.prompts} prompts × ${ablation.settings.imagesPerPrompt} images). "No hypernetwork" is the same finetune from ΔW = 0; "K = 1" runs the trained hypernetwork with one refinement iteration.`,
    '',
    '| method | identity similarity | prompt fidelity | time (median) |',
    '|---|---|---|---|',
    ...ablation.rows.map((r) => `| ${name(r)} | ${stat(r.identitySimilarity)} | ${stat(r.promptFidelity)} | ${r.medianSeconds == null ? '–' : `${r.medianSeconds.toFixed(2)} s`} |`),
    '',
  ];
}

interface CurveRecord {
  readonly measuredAt: string;
  readonly settings: { identities: number; prompts: number; imagesPerPrompt: number };
  readonly curves: readonly { method: string; points: readonly { steps: number; seconds: number; identity: number; fidelity: number }[] }[];
  readonly reference: { identity: number; seconds: number };
  readonly atEqualIdentity: readonly { method: string; secondsToReach: number | null; speedUp: number | null; best: { identity: number; seconds: number; speedUpLowerBound: number } }[];
}

/** Identity against wall-clock time (`npm run bench:world-curve`): the speed-up at equal identity. */
function curveSection(dir: string): string[] {
  const curve = readJson<CurveRecord>(join(dir, CARD_FOLDER, WORLD_CURVE_JSON));
  if (!curve || !existsSync(join(dir, CARD_FOLDER, WORLD_CURVE_PNG))) return [];
  return [
    '## Identity against time (`npm run bench:world-curve`)',
    '',
    `Run of ${curve.measuredAt.slice(0, 10)}: ${curve.settings.identities} TEST identities × ${curve.settings.prompts} prompts × ${curve.settings.imagesPerPrompt} image; each point is a personalization with that many steps (labels), at its median wall time on the shared 2-core CPU. HyperDreamBooth reaches identity ${curve.reference.identity.toFixed(3)} in ${curve.reference.seconds.toFixed(2)} s.`,
    '',
    '| baseline | time to reach that identity | speed-up at equal identity |',
    '|---|---|---|',
    ...curve.atEqualIdentity.map((a) =>
      a.speedUp === null || a.secondsToReach === null
        ? `| ${a.method} | never (best ${a.best.identity.toFixed(3)} after ${a.best.seconds.toFixed(1)} s) | > ${a.best.speedUpLowerBound.toFixed(1)}× |`
        : `| ${a.method} | ${a.secondsToReach.toFixed(1)} s | ${a.speedUp.toFixed(1)}× |`,
    ),
    '',
    `![identity against wall-clock time](${CARD_FOLDER}/${WORLD_CURVE_PNG})`,
    '',
  ];
}

export async function modelCard(dir: string): Promise<string> {
  const digest = await packDigest(dir);
  const missing = missingPackFiles(dir);
  const files = packFiles(dir).filter((f) => f.path !== 'README.md');
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  const grid = existsSync(join(dir, CARD_FOLDER, BASE_GATE_GRID));
  const folderBytes = new Map<string, number>();
  for (const f of files) {
    const top = f.path.includes('/') ? `${f.path.split('/')[0]}/` : f.path;
    folderBytes.set(top, (folderBytes.get(top) ?? 0) + f.bytes);
  }
  return [
    `# ${WORLD_PACK_ID}: the synthetic face world's model pack`,
    '',
    "Stable Diffusion 1.5's architecture at tiny widths, every network trained from scratch by this repository's ONNX",
    'engine on a 2-core CPU, on procedural renders of the synthetic face world (docs/world.md): 32 px images, a ×4',
    'VAE, 8 × 8 × 4 latents. It is what `npm start` serves once every part is here (the runner draws 32 px and enlarges',
    'requests for multiples of it), and what `npm run bench:world` measures HyperDreamBooth on.',
    '',
    `Status: ${missing.length === 0 ? 'complete (every diffusers part present)' : `incomplete, missing ${missing.map((m) => `\`${m}\``).join(', ')}: the product uses the random tiny pack until then`}. Size ${mb(total)} of the ${mb(WORLD_PACK_MAX_BYTES)} budget (without this card).`,
    '',
    '## Stages',
    ...vaeSection(dir),
    ...baseSection(dir, digest),
    ...hypernetworkSection(dir),
    '- **Tokenizer** (`tokenizer/`): OpenAI CLIP\'s BPE vocabulary (MIT licence, `tokenizer/LICENSE`), bundled in the repository.',
    "- **Scheduler** (`scheduler/`): SD 1.5's (scaled-linear betas 0.00085 → 0.012 over 1000 steps, ε prediction), the schedule the base model was trained with.",
    '',
    ...(grid
      ? [
          '## Sample grid',
          '',
          'Per TEST identity its reference photo, then one column per held-out context; the first block is the world drawing the',
          'prompt itself (the ceiling), the second the base model given the same prompt in words (enlarged 4×).',
          '',
          `![base model on held-out prompts](${CARD_FOLDER}/${BASE_GATE_GRID})`,
          '',
        ]
      : []),
    ...benchSection(dir),
    ...ablationSection(dir),
    ...curveSection(dir),
    '## Files',
    '',
    '| part | size |',
    '|---|---|',
    ...[...folderBytes.entries()].map(([part, bytes]) => `| \`${part}\` | ${mb(bytes)} |`),
    '',
    'Rebuild this card and the shared parts with `npm run world:assemble-pack`; the budget is checked by',
    '`gpu-runner/pack/world-pack.test.ts`.',
    '',
  ].join('\n');
}
