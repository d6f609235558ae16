// Converting a model output to (x0, ε) under the ᾱ parameterization x_t = √ᾱ·x0 + √(1-ᾱ)·ε (DDIM, PNDM).
import type { PredictionType } from './noise-schedule.ts';
import { mixRows } from './scheduler.ts';

export function predictOriginalAndEpsilon(
  predictionType: PredictionType,
  modelOutput: number,
  sample: number,
  alphaProd: number,
  clipRange: number,
): { original: number; epsilon: number } {
  const sqrtAlpha = Math.sqrt(alphaProd);
  const sqrtBeta = Math.sqrt(1 - alphaProd);
  let original: number;
  let epsilon: number;
  switch (predictionType) {
    case 'epsilon':
      original = (sample - sqrtBeta * modelOutput) / sqrtAlpha;
      epsilon = modelOutput;
      break;
    case 'sample':
      original = modelOutput;
      epsilon = (sample - sqrtAlpha * modelOutput) / sqrtBeta;
      break;
    case 'v_prediction':
      original = sqrtAlpha * sample - sqrtBeta * modelOutput;
      epsilon = sqrtAlpha * modelOutput + sqrtBeta * sample;
      break;
  }
  // diffusers clips x0 but keeps ε from the unclipped prediction (use_clipped_model_output = False).
  if (Number.isFinite(clipRange)) original = Math.min(clipRange, Math.max(-clipRange, original));
  return { original, epsilon };
}

/** The forward process per batch row: √ᾱ_t·x0 + √(1-ᾱ_t)·ε, with t indexing the training schedule. */
export function addNoiseByAlpha(
  className: string,
  alphasCumprod: ArrayLike<number>,
  original: Float32Array,
  noise: Float32Array,
  timesteps: readonly number[],
): Float32Array {
  return mixRows(
    original,
    noise,
    timesteps.map((t) => {
      const alpha = alphasCumprod[t];
      if (alpha === undefined) throw new Error(`${className}.addNoise: timestep ${t} is outside the schedule`);
      return [Math.sqrt(alpha), Math.sqrt(1 - alpha)] as const;
    }),
  );
}

/** Options of the diffusers configs that we do not implement: refuse them rather than silently differ. */
export function refuseUnsupported(
  className: string,
  config: { thresholding?: boolean; rescale_betas_zero_snr?: boolean },
): void {
  if (config.thresholding) throw new Error(`${className}: thresholding (dynamic thresholding) is not supported`);
  if (config.rescale_betas_zero_snr) throw new Error(`${className}: rescale_betas_zero_snr is not supported`);
}
