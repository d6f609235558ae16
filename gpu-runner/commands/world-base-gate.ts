// `npm run world:base-gate [-- --pack DIR] [--identities N] [--contexts N] [--images N] [--steps N] [--cfg X] [--seed N]
// [--threads N] [--out DIR]`: the base model's gate (base-gate.ts) on a world pack (gpu-runner/world/pack by default).
// Prints a table per evaluator head, writes `base-gate.json` and `base-gate-grid.png` (4× enlarged: per identity its
// reference photo, then one image per context; first block the world's renders, then the base model) into --out (the
// pack's card/ folder by default), and exits 1 when the gate fails.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { loadModelPack, PACK_CARD_FOLDER } from '../pack/model-pack.ts';
import { BASE_GATE_GRID, BASE_GATE_JSON } from '../world/packaging/model-card.ts';
import { sampleGrid } from '../world/benchmark/grid.ts';
import { WorldEvaluator } from '../world/evaluators/evaluator.ts';
import { encodePng } from '../world/png.ts';
import type { RgbImage } from '../world/render.ts';
import { BASE_GATE_SETTINGS, GATED_HEADS, PASS_LIFT, runBaseGate, type BaseGateSettings } from '../world/packaging/base-gate.ts';
import { missingPackFiles, WORLD_PACK_DIR } from '../pack/world-pack.ts';

const GRID_ENLARGEMENT = 4;

const { values } = parseArgs({
  options: {
    pack: { type: 'string' },
    identities: { type: 'string' },
    contexts: { type: 'string' },
    images: { type: 'string' },
    steps: { type: 'string' },
    cfg: { type: 'string' },
    seed: { type: 'string' },
    threads: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});

function positive(name: string, value: string | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  return n;
}

/** Nearest-neighbour enlargement, so 32 px tiles can be judged on a screen. */
function enlarge(image: RgbImage, factor: number): RgbImage {
  const width = image.width * factor;
  const data = new Float32Array(width * image.height * factor * 3);
  for (let y = 0; y < image.height * factor; y++) {
    for (let x = 0; x < width; x++) {
      const from = (Math.floor(y / factor) * image.width + Math.floor(x / factor)) * 3;
      data.set(image.data.subarray(from, from + 3), (y * width + x) * 3);
    }
  }
  return { width, height: image.height * factor, data };
}

const packDir = resolve(values.pack ?? WORLD_PACK_DIR);
const missing = missingPackFiles(packDir);
if (missing.length > 0) throw new Error(`${packDir} is not a complete pack: missing ${missing.join(', ')}`);
const settings: BaseGateSettings = {
  identities: positive('identities', values.identities, BASE_GATE_SETTINGS.identities),
  contexts: positive('contexts', values.contexts, BASE_GATE_SETTINGS.contexts),
  imagesPerPrompt: positive('images', values.images, BASE_GATE_SETTINGS.imagesPerPrompt),
  samplerSteps: positive('steps', values.steps, BASE_GATE_SETTINGS.samplerSteps),
  guidanceScale: positive('cfg', values.cfg, BASE_GATE_SETTINGS.guidanceScale, false),
  seed: values.seed === undefined ? BASE_GATE_SETTINGS.seed : positive('seed', values.seed, 1),
  ...(values.threads ? { threads: positive('threads', values.threads, 1) } : {}),
};
const log = (line: string) => console.error(`[base-gate] ${line}`);
const pack = await loadModelPack(packDir, (warning) => log(`warning: ${warning}`));
log(`pack ${pack.id} (sha256 ${pack.sha256.slice(0, 12)}…), ${pack.model.resolution} px; ${settings.identities} test identities × ${settings.contexts} contexts × ${settings.imagesPerPrompt} images, DDIM ${settings.samplerSteps} steps, CFG ${settings.guidanceScale}`);
const evaluator = await WorldEvaluator.open();
const result = await runBaseGate({ pack, evaluator, settings, log });
await evaluator.close();

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`\nbase-model gate, pack ${pack.id}: ${result.images} images of held-out prompts (gated heads: ${GATED_HEADS.join(', ')}; pass: (accuracy − chance) / (renders − chance) ≥ ${PASS_LIFT})`);
console.log('head         group     accuracy  chance  needed  lift    renders  verdict');
for (const h of result.heads) {
  const verdict = h.gated ? (h.passed ? 'pass' : 'FAIL') : 'reported';
  console.log(`${h.name.padEnd(12)} ${h.group.padEnd(9)} ${pct(h.accuracy).padStart(8)}  ${pct(h.chance).padStart(6)}  ${(h.gated ? pct(h.threshold) : '-').padStart(6)}  ${h.lift.toFixed(2).padStart(5)}  ${(h.rendersAccuracy === undefined ? '-' : pct(h.rendersAccuracy)).padStart(7)}  ${verdict}`);
}
console.log(`\n${result.passed ? 'PASSED' : 'FAILED'} in ${result.seconds.toFixed(0)} s`);

const outDir = resolve(values.out ?? join(packDir, PACK_CARD_FOLDER));
mkdirSync(outDir, { recursive: true });
const grid = sampleGrid(result.sheet);
writeFileSync(join(outDir, BASE_GATE_GRID), await encodePng(enlarge(grid.image, GRID_ENLARGEMENT)));
writeFileSync(
  join(outDir, BASE_GATE_JSON),
  `${JSON.stringify(
    {
      pack: { id: pack.id, sha256: pack.sha256, resolution: pack.model.resolution },
      settings: { ...settings, scheduler: 'ddim' },
      rule: { gatedHeads: GATED_HEADS, passLift: PASS_LIFT, chance: 'max(1 / classes, share of the most common truth in the gate set)', lift: '(accuracy - chance) / (ceiling - chance), ceiling = the evaluator on the world renders of the same prompts' },
      passed: result.passed,
      images: result.images,
      seconds: result.seconds,
      heads: result.heads,
      identityIds: result.identityIds,
      prompts: result.prompts,
      grid: { file: BASE_GATE_GRID, enlargement: GRID_ENLARGEMENT, rows: grid.rows, columns: grid.columns },
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${join(outDir, BASE_GATE_JSON)} and ${join(outDir, BASE_GATE_GRID)}`);
await shutdownSharedSessionHost();
process.exitCode = result.passed ? 0 : 1;
