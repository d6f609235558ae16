// One personalization of the benchmark: a library method on one reference image, timed as a user waits for it
// (graph building, session creation and optimizer steps), and the weight file a user would download (fp16).
import { personalize } from '../../personalize/api.ts';
import type { PersonalizationModel } from '../../personalize/model.ts';
import { decodeNativeWeights, encodeNativeWeights } from '../../personalize/weights/native-format.ts';
import type { PersonalizedWeights } from '../../personalize/weights/personalized-weights.ts';
import type { PriorPreservation } from '../../personalize/finetune/prior.ts';
import { toRgbBytes } from '../png.ts';
import type { RgbImage } from '../render.ts';
import type { BenchmarkMethod, WorldBenchmarkSettings } from './settings.ts';
import { median } from './stats.ts';

export interface PersonalizationRun {
  readonly method: BenchmarkMethod;
  readonly identityId: number;
  /** Wall time of the whole personalization (what a user waits for). */
  readonly totalMs: number;
  /** Optimizer steps run (0 for the hypernetwork alone). */
  readonly steps: number;
  /** Median time of one optimizer step, from the progress callbacks (null without steps). */
  readonly stepMs: number | null;
  readonly finalLoss: number | null;
  /** Size of the native weight file at fp16. */
  readonly fileBytes: number;
  /** The weights as decoded from that file: generation uses exactly what a user would download. */
  readonly weights: PersonalizedWeights;
}

/**
 * The optimizer's seed for one face: its own per face, so a method's mean score averages over many draws of timesteps
 * and noise instead of resting on the one draw every face would share (25 finetune steps see only 25 timesteps).
 * Every method gets the same seed for the same face.
 */
export function personalizationSeed(settings: Pick<WorldBenchmarkSettings, 'seed'>, identityId: number): number {
  return settings.seed * 1_000_000 + identityId;
}

function stepsOf(method: BenchmarkMethod, settings: WorldBenchmarkSettings): number {
  return method === 'hyper-only' ? 0 : settings.steps[method];
}


export async function runPersonalization(
  model: PersonalizationModel,
  method: BenchmarkMethod,
  identityId: number,
  reference: RgbImage,
  identifier: string,
  settings: WorldBenchmarkSettings,
  prior?: PriorPreservation,
): Promise<PersonalizationRun> {
  const steps = stepsOf(method, settings);
  const stepEnds: number[] = [];
  let finalLoss: number | null = null;
  const started = performance.now();
  const { weights } = await personalize(
    model,
    { image: { width: reference.width, height: reference.height, data: toRgbBytes(reference) } },
    {
      method,
      identifier,
      seed: personalizationSeed(settings, identityId),
      relax: settings.relax.mode,
      ...(method === 'hyperdreambooth' ? { timesteps: settings.finetuneTimesteps } : {}),
      rank: settings.relax.rank,
      ...(steps > 0 ? { steps, learningRate: settings.learningRates[method] } : {}),
      ...(steps > 0 && prior ? { prior } : {}),
      onProgress: ({ loss }) => {
        stepEnds.push(performance.now());
        finalLoss = loss;
      },
    },
  );
  const totalMs = performance.now() - started;
  const intervals = stepEnds.slice(1).map((t, i) => t - stepEnds[i]!);
  const bytes = encodeNativeWeights(weights, 'F16');
  return {
    method,
    identityId,
    totalMs,
    steps,
    stepMs: intervals.length > 0 ? median(intervals) : null,
    finalLoss,
    fileBytes: bytes.byteLength,
    weights: decodeNativeWeights(bytes, { unet: model.unet.plan, textEncoder: model.textEncoder.config }),
  };
}
