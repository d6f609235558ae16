// `npm run bench:world-multi-photo [-- --identities N] [--prompts N] [--photos N]` (docs/world.md): does a subject
// with several photos personalize better than with one, and how should the hypernetwork combine them? On VALIDATION
// identities of the world (never the test split), each identity's photos are the benchmark's reference photo plus
// more plain photos of the same face (own framing and light), the prompts and sampler seeds are bench:world's, and the
// world evaluator scores identity against the first photo (the one reference every row shares). Rows: the
// hypernetwork alone and full HyperDreamBooth, from 1 photo and from all photos with each combination of
// `PHOTO_COMBINATIONS` (the finetune always takes the photos in turn). Writes bench/results/world-multi-photo.json.
import { parseArgs } from 'node:util';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { loadModelPack, schedulerChoice } from '../gpu-runner/pack/model-pack.ts';
import { PHOTO_COMBINATIONS, personalize, type ImageInput, type PhotoCombination } from '../gpu-runner/personalize/api.ts';
import { DEFAULT_FINETUNE_LEARNING_RATE, DEFAULT_FINETUNE_STEPS } from '../gpu-runner/personalize/finetune/fast-finetune.ts';
import { decodeNativeWeights, encodeNativeWeights } from '../gpu-runner/personalize/weights/native-format.ts';
import { DEFAULT_WORLD, identityIds } from '../gpu-runner/world/dataset.ts';
import { identitySimilarity, promptFidelity, referenceSimilarity, WorldEvaluator } from '../gpu-runner/world/evaluators/evaluator.ts';
import { BenchmarkSamplers } from '../gpu-runner/world/benchmark/generation.ts';
import { benchmarkPrompts, REFERENCE_CONTEXT, referenceImage } from '../gpu-runner/world/benchmark/prompts.ts';
import { FULL_SETTINGS } from '../gpu-runner/world/benchmark/settings.ts';
import { spread } from '../gpu-runner/world/benchmark/stats.ts';
import { toRgbBytes } from '../gpu-runner/world/png.ts';
import { renderSample } from '../gpu-runner/world/dataset.ts';
import type { RgbImage } from '../gpu-runner/world/render.ts';
import { sampleIdentity, sampleNuisance } from '../gpu-runner/world/sample.ts';
import { namedRng } from '../gpu-runner/random/index.ts';
import { printTable, writeResults } from './report.ts';

const { values: flags } = parseArgs({
  options: {
    identities: { type: 'string', default: '4' },
    prompts: { type: 'string', default: '3' },
    photos: { type: 'string', default: '3' },
    pack: { type: 'string' },
  },
});
const identities = Number(flags.identities);
const promptCount = Number(flags.prompts);
const photoCount = Number(flags.photos);
if (photoCount < 2) throw new Error('--photos: at least 2 (the comparison is against 1 photo)');

/** bench:world's sampling and finetune settings, so the 1-photo rows are that benchmark's numbers on these faces. */
const settings = { ...FULL_SETTINGS, split: 'validation' as const, imagesPerPrompt: 1 };
const world = DEFAULT_WORLD;

/** Photo 0 is bench:world's reference; the others are plain photos of the same face with their own nuisance. */
function photosOf(id: number, size: number): RgbImage[] {
  const extra = Array.from({ length: photoCount - 1 }, (_, k) =>
    renderSample(sampleIdentity(world.seed, id), REFERENCE_CONTEXT, sampleNuisance(namedRng(settings.seed, `world-multi-photo/${id}/${k + 1}`)), size),
  );
  return [referenceImage(world, id, size, settings.seed), ...extra];
}

type Row = { method: 'hyper-only' | 'hyperdreambooth'; photos: number; combination: PhotoCombination | 'single' };
const rows: Row[] = (['hyper-only', 'hyperdreambooth'] as const).flatMap((method) => [
  { method, photos: 1, combination: 'single' as const },
  // For the hypernetwork alone, `first` is the 1-photo prediction: not run twice.
  ...PHOTO_COMBINATIONS.filter((c) => method === 'hyperdreambooth' || c !== 'first').map((combination) => ({ method, photos: photoCount, combination })),
]);
const label = (row: Row) => `${row.method}, ${row.photos === 1 ? '1 photo' : `${row.photos} photos, ${row.combination}`}`;

const log = (line: string) => console.error(`[world-multi-photo] ${line}`);
const pack = await loadModelPack(flags.pack, (warning) => log(`warning: ${warning}`));
const model = pack.model;
const size = model.resolution;
const ids = identityIds(world, 'validation').slice(0, identities);
const prompts = benchmarkPrompts(promptCount, world.identifier);
const evaluator = await WorldEvaluator.open();
const samplers = new BenchmarkSamplers(model, pack.tokenizer, settings.threads);
const sampling = { scheduler: schedulerChoice(pack, settings.scheduler), steps: settings.samplerSteps, guidanceScale: settings.guidanceScale };
log(`pack ${pack.id}; ${ids.length} validation identities (${ids.join(', ')}) × ${prompts.length} prompts × 1 image; ${photoCount} photos`);

type Score = { identityId: number; prompt: number; identitySimilarity: number; promptFidelity: number; referenceSimilarity: number };
const scores = rows.map(() => [] as Score[]);
try {
  for (const [index, id] of ids.entries()) {
    const photos = photosOf(id, size);
    const inputs: ImageInput[] = photos.map((photo) => ({ image: { width: photo.width, height: photo.height, data: toRgbBytes(photo) } }));
    for (const [r, row] of rows.entries()) {
      const { weights } = await personalize(model, row.photos === 1 ? inputs.slice(0, 1) : inputs, {
        method: row.method,
        identifier: world.identifier,
        seed: settings.seed,
        relax: settings.relax.mode,
        rank: settings.relax.rank,
        ...(row.combination === 'single' ? {} : { combination: row.combination }),
        ...(row.method === 'hyperdreambooth' ? { steps: DEFAULT_FINETUNE_STEPS, learningRate: DEFAULT_FINETUNE_LEARNING_RATE } : {}),
      });
      // Generation uses the fp16 file a user downloads, as in bench:world.
      const downloaded = decodeNativeWeights(encodeNativeWeights(weights, 'F16'), { unet: model.unet.plan, textEncoder: model.textEncoder.config });
      const images: RgbImage[] = [];
      for (const [p, prompt] of prompts.entries()) {
        const seed = settings.seed * 1_000_000 + index * prompts.length + p;
        images.push(...(await samplers.sample(downloaded, prompt.text, seed, 1, sampling)));
      }
      const [reference, ...scored] = await evaluator.score([photos[0]!, ...images]);
      scored.forEach((s, p) =>
        scores[r]!.push({
          identityId: id,
          prompt: p,
          identitySimilarity: identitySimilarity(s, reference!),
          promptFidelity: promptFidelity(s, prompts[p]!.context),
          referenceSimilarity: referenceSimilarity(s, reference!),
        }),
      );
      log(`identity ${id} (${index + 1}/${ids.length}): ${label(row)} done`);
    }
  }
} finally {
  await samplers.release();
  await evaluator.close();
  await shutdownSharedSessionHost();
}

const metric = (list: readonly Score[], key: 'identitySimilarity' | 'promptFidelity' | 'referenceSimilarity') => spread(list.map((s) => s[key]));
/** Per image, the row's score minus its method's 1-photo score on the same identity, prompt and sampler seed. */
const pairedGain = (r: number) => {
  const base = scores[rows.findIndex((row) => row.method === rows[r]!.method && row.photos === 1)]!;
  return spread(scores[r]!.map((s, i) => s.identitySimilarity - base[i]!.identitySimilarity));
};
const table = rows.map((row, r) => {
  const [id, fidelity, ref] = [metric(scores[r]!, 'identitySimilarity'), metric(scores[r]!, 'promptFidelity'), metric(scores[r]!, 'referenceSimilarity')];
  const gain = pairedGain(r);
  return {
    row: label(row),
    'identity ↑': `${id.mean.toFixed(3)} ± ${id.sd.toFixed(3)}`,
    'Δ identity vs 1 photo': row.photos === 1 ? '–' : `${gain.mean >= 0 ? '+' : ''}${gain.mean.toFixed(3)} ± ${gain.sd.toFixed(3)}`,
    'prompt fidelity ↑': `${fidelity.mean.toFixed(3)} ± ${fidelity.sd.toFixed(3)}`,
    'reference sim. ↑': `${ref.mean.toFixed(3)} ± ${ref.sd.toFixed(3)}`,
  };
});
printTable(`world-multi-photo: ${ids.length} VALIDATION identities × ${prompts.length} prompts × 1 image, ${photoCount} photos (mean ± sd over images)`, table);
const path = writeResults('world-multi-photo', {
  pack: { id: pack.id, sha256: pack.sha256, resolution: size, hypernetwork: pack.hypernetwork },
  split: 'validation',
  identityIds: ids,
  prompts: prompts.map((p) => p.text),
  photos: photoCount,
  sampler: { scheduler: settings.scheduler, steps: settings.samplerSteps, guidanceScale: settings.guidanceScale, seed: settings.seed },
  finetune: { steps: DEFAULT_FINETUNE_STEPS, learningRate: DEFAULT_FINETUNE_LEARNING_RATE, relax: settings.relax },
  table,
  rows: rows.map((row, r) => ({ ...row, label: label(row), scores: scores[r] })),
});
log(`wrote ${path}`);
