// The world benchmark's core (docs/world.md, "Benchmark"; the paper's Tables 1 and 3 in this world): on test identities
// never seen in training, one reference image each, every method personalizes, then the same prompts with the same
// seeds are sampled from each method's weights and scored by the world evaluator.
import type { LoadedPack } from '../../pack/model-pack.ts';
import { schedulerChoice } from '../../pack/model-pack.ts';
import type { Context, Identity } from '../attributes.ts';
import { DEFAULT_WORLD, identityIds, type WorldConfig } from '../dataset.ts';
import { identitySimilarity, promptFidelity, referenceSimilarity, type ImageScores, type WorldEvaluator } from '../evaluators/evaluator.ts';
import { HEADS } from '../evaluators/heads.ts';
import { sampleIdentity } from '../sample.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import type { RgbImage } from '../render.ts';
import { BenchmarkSamplers, type SamplingOptions } from './generation.ts';
import { runPersonalization, type PersonalizationRun } from './personalization.ts';
import { classPrompts, parsePriorPreservation, preparePriorPreservation, type PriorPreservation } from '../../personalize/finetune/prior.ts';
import { benchmarkPrompts, referenceImage, renderedTruth, type BenchmarkPrompt } from './prompts.ts';
import type { BenchmarkMethod, WorldBenchmarkSettings } from './settings.ts';

/** A row of the table: a personalization method, or a reference row (chance and ceiling, no personalization). */
export type Subject = { readonly kind: 'method'; readonly method: BenchmarkMethod } | { readonly kind: 'base-model' } | { readonly kind: 'renders' };

export interface ImageScore {
  readonly identityId: number;
  readonly prompt: number;
  readonly image: number;
  readonly identitySimilarity: number;
  readonly promptFidelity: number;
  readonly referenceSimilarity: number;
  /**
   * Per evaluator head, whether its most probable class is the truth: the identity's own attribute for identity heads,
   * the prompt's request for context heads (which parts of identity and prompt survive, e.g. "hat but not background").
   */
  readonly hits: Readonly<Record<string, boolean>>;
}

export interface SubjectOutcome {
  readonly subject: Subject;
  readonly scores: readonly ImageScore[];
  /** Personalizations, one per identity (methods only). */
  readonly runs: readonly Omit<PersonalizationRun, 'weights'>[];
  /** First image per identity (outer) and prompt (inner), for the sample grid. */
  readonly samples: readonly (readonly RgbImage[])[];
}

export interface WorldBenchmarkResult {
  readonly settings: WorldBenchmarkSettings;
  readonly identityIds: readonly number[];
  readonly prompts: readonly BenchmarkPrompt[];
  readonly references: readonly RgbImage[];
  readonly outcomes: readonly SubjectOutcome[];
  /** The rows in the order they ran on each face (faces in the order of identityIds). */
  readonly runOrder: readonly (readonly string[])[];
}

export interface WorldBenchmarkInput {
  readonly pack: LoadedPack;
  readonly evaluator: WorldEvaluator;
  readonly settings: WorldBenchmarkSettings;
  readonly world?: WorldConfig;
  readonly log?: (line: string) => void;
}

/** Sampler seed of (identity, prompt): the same for every method, so methods are compared on paired draws. */
function samplerSeed(settings: WorldBenchmarkSettings, identityIndex: number, prompt: number): number {
  return settings.seed * 1_000_000 + (identityIndex * settings.prompts + prompt) * settings.imagesPerPrompt;
}

export function subjectLabel(subject: Subject): string {
  return subject.kind === 'method' ? subject.method : subject.kind;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function headHits(scores: ImageScores, identity: Identity, context: Context): Record<string, boolean> {
  return Object.fromEntries(HEADS.map((head, k) => [head.name, argmax(scores.probs[k]!) === head.label(identity, context)]));
}

async function scoreImages(
  evaluator: WorldEvaluator,
  reference: RgbImage,
  images: readonly { prompt: number; image: number; context: Context; pixels: RgbImage }[],
  identity: Identity,
): Promise<ImageScore[]> {
  const [referenceScores, ...scores] = await evaluator.score([reference, ...images.map((i) => i.pixels)]);
  return images.map((item, k) => ({
    identityId: identity.id,
    prompt: item.prompt,
    image: item.image,
    identitySimilarity: identitySimilarity(scores[k]!, referenceScores!),
    promptFidelity: promptFidelity(scores[k]!, item.context),
    referenceSimilarity: referenceSimilarity(scores[k]!, referenceScores!),
    hits: headHits(scores[k]!, identity, item.context),
  }));
}

/** One untimed one-step run on a validation identity (never a test identity), so timings start warm. */
async function warmUp(model: LoadedPack['model'], method: BenchmarkMethod, world: WorldConfig, settings: WorldBenchmarkSettings, prior: PriorPreservation | undefined): Promise<void> {
  const [id] = identityIds(world, 'validation');
  if (id === undefined) throw new Error("warm-up needs an identity in the world's validation split");
  const oneStep = { hyperdreambooth: 1, 'lidb-zero': 1, 'dreambooth-lora': 1, 'textual-inversion': 1 };
  await runPersonalization(model, method, id, referenceImage(world, id, model.resolution, settings.seed), world.identifier, { ...settings, steps: oneStep }, prior);
}

/**
 * Indices into subjects in the order they run on face `faceIndex`: reference rows first (untimed), then the methods
 * rotated by one place per face, so no method always runs first or last.
 */
export function rotatedMethodOrder(subjects: readonly Subject[], faceIndex: number): number[] {
  const reference = subjects.flatMap((subject, i) => (subject.kind === 'method' ? [] : [i]));
  const methods = subjects.flatMap((subject, i) => (subject.kind === 'method' ? [i] : []));
  const shift = methods.length === 0 ? 0 : faceIndex % methods.length;
  return [...reference, ...methods.slice(shift), ...methods.slice(0, shift)];
}

export async function runWorldBenchmark(input: WorldBenchmarkInput): Promise<WorldBenchmarkResult> {
  const { pack, evaluator, settings } = input;
  const world = input.world ?? DEFAULT_WORLD;
  const log = input.log ?? (() => {});
  const model = pack.model;
  const splitIds = identityIds(world, settings.split);
  if (settings.identities > splitIds.length) throw new Error(`the world's ${settings.split} split has ${splitIds.length} identities, ${settings.identities} asked for`);
  const ids = splitIds.slice(0, settings.identities);
  const prompts = benchmarkPrompts(settings.prompts, world.identifier);
  const size = model.resolution;
  const references = ids.map((id) => referenceImage(world, id, size, settings.seed));
  const sampling: SamplingOptions = { scheduler: schedulerChoice(pack, settings.scheduler), steps: settings.samplerSteps, guidanceScale: settings.guidanceScale };
  const samplers = new BenchmarkSamplers(model, pack.tokenizer, settings.threads);
  // Class images are drawn once per model (a runner caches them the same way), before any timed personalization.
  const prior: PriorPreservation | undefined =
    settings.priorWeight > 0
      ? await preparePriorPreservation(model, sampling.scheduler, parsePriorPreservation({ weight: settings.priorWeight, classSamples: { prompts: classPrompts(settings.priorImages) } }))
      : undefined;
  if (prior) log(`prior preservation: λ ${prior.weight}, ${prior.samples.length} class samples`);

  const subjects: Subject[] = [
    ...(settings.referenceRows ? [{ kind: 'renders' } as const, { kind: 'base-model' } as const] : []),
    ...settings.methods.map((method) => ({ kind: 'method', method }) as const),
  ];
  const runOrder: string[][] = [];
  const collected = subjects.map(() => ({ scores: [] as ImageScore[], runs: [] as Omit<PersonalizationRun, 'weights'>[], samples: [] as RgbImage[][] }));
  try {
    if (settings.warmup) for (const method of settings.methods) await warmUp(model, method, world, settings, prior);
    // Faces outer, methods inner, and the methods' order rotated face by face: every method runs in turn on the same
    // face, so a slow spell of a shared machine lands on all of them and the per-face speed-ups compare like with like.
    for (const [index, id] of ids.entries()) {
      const order = rotatedMethodOrder(subjects, index);
      runOrder.push(order.map((s) => subjectLabel(subjects[s]!)));
      for (const s of order) {
        const subject = subjects[s]!;
        const { scores, runs, samples } = collected[s]!;
        let weights: PersonalizedWeights | undefined;
        if (subject.kind === 'method') {
          const { weights: w, ...run } = await runPersonalization(model, subject.method, id, references[index]!, world.identifier, settings, prior);
          weights = w;
          runs.push(run);
          log(`${subject.method} identity ${id}: ${(run.totalMs / 1000).toFixed(1)} s, ${run.steps} steps, ${run.fileBytes} B`);
        }
        const images: { prompt: number; image: number; context: Context; pixels: RgbImage }[] = [];
        for (const [p, prompt] of prompts.entries()) {
          const pixels =
            subject.kind === 'renders'
              ? Array.from({ length: settings.imagesPerPrompt }, (_, k) => renderedTruth(world, id, prompt.context, size, settings.seed, k))
              : await samplers.sample(weights, prompt.text, samplerSeed(settings, index, p), settings.imagesPerPrompt, sampling);
          pixels.forEach((image, k) => images.push({ prompt: p, image: k, context: prompt.context, pixels: image }));
        }
        scores.push(...(await scoreImages(evaluator, references[index]!, images, sampleIdentity(world.seed, id))));
        samples.push(prompts.map((_, p) => images.find((i) => i.prompt === p && i.image === 0)!.pixels));
      }
      log(`identity ${id}: ${index + 1} of ${ids.length} faces done`);
    }
  } finally {
    await samplers.release();
  }
  const outcomes: SubjectOutcome[] = subjects.map((subject, s) => ({ subject, ...collected[s]! }));
  return { settings, identityIds: ids, prompts, references, outcomes, runOrder };
}
