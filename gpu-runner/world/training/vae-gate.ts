// The VAE's quality gate (docs/world.md): does a reconstruction keep identity? Measured on renders of held-out TEST
// identities with the world evaluator (trained on renders only): hair hue error < 15°, eye-colour agreement > 90%
// (the evaluator's eye_colour head on the reconstruction vs on the original), plus PSNR and the other identity heads'
// agreement for context. The command: gpu-runner/commands/world-vae-gate.ts.
import { writeFileSync } from 'node:fs';
import type { ParamSet } from '../../onnx/optim/index.ts';
import type { Sample } from '../dataset.ts';
import { HEADS } from '../evaluators/heads.ts';
import { WorldEvaluator } from '../evaluators/evaluator.ts';
import { encodePng, tile } from '../png.ts';
import type { RgbImage } from '../render.ts';
import { colourAccuracy, EYE_COLOUR, HAIR_COLOUR } from './colour-probe.ts';
import { hairHueError } from './hair-hue.ts';
import type { WorldVae } from './vae-config.ts';
import { splitSamples, worldAt } from './vae-data.ts';
import { readVaePack, roundToFloat16 } from './vae-params.ts';
import { VaeReconstructor } from './vae-reconstruct.ts';
import { readVaeCheckpoint } from './train-vae.ts';

/** The gate's thresholds (docs/world.md). */
export const VAE_GATE = { maxHairHueErrorDegrees: 15, minEyeColourAgreement: 0.9 } as const;
export const DEFAULT_GATE_SAMPLES = 256;
const GRID_PAIRS = 32;
const GRID_COLUMNS = 8;
const GRID_ZOOM = 4;

export interface VaeGateResult {
  samples: number;
  psnrDb: number;
  hairHueErrorDegrees: number;
  /** Samples whose hair has a hue (coloured hair, not black/white/grey) and enough hair pixels. */
  hueSamples: number;
  eyeColourAgreement: number;
  /** Agreement of every identity head (argmax on the reconstruction = argmax on the original). */
  identityAgreement: Record<string, number>;
  /**
   * Evaluator-free colour accuracy (colour-probe.ts): the reconstruction's colour over the eye / hair pixels is nearest
   * to the render with the true colour; `visible` counts the samples where those pixels show. Reported, not gated.
   */
  pixelColourAccuracy: Record<string, { accuracy: number; visible: number }>;
  passed: boolean;
}

function psnr(a: RgbImage, b: RgbImage): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  return 10 * Math.log10(1 / Math.max(se / a.data.length, 1e-12));
}

const argmax = (p: Float32Array) => p.indexOf(Math.max(...p));

export async function measureVaeGate(vae: WorldVae, params: ParamSet, samples: readonly Sample[]): Promise<{ result: VaeGateResult; reconstructions: RgbImage[] }> {
  const reconstructor = await VaeReconstructor.open(vae, params);
  const { images: reconstructions } = await reconstructor.run(samples.map((s) => s.image));
  await reconstructor.close();
  const evaluator = await WorldEvaluator.open();
  const original = await evaluator.score(samples.map((s) => s.image));
  const rebuilt = await evaluator.score(reconstructions);
  await evaluator.close();

  const identityAgreement: Record<string, number> = {};
  HEADS.forEach((head, k) => {
    if (head.group !== 'identity') return;
    const agree = samples.filter((_, i) => argmax(original[i]!.probs[k]!) === argmax(rebuilt[i]!.probs[k]!)).length;
    identityAgreement[head.name] = agree / samples.length;
  });
  const hueErrors = samples.map((s, i) => hairHueError(s, reconstructions[i]!)).filter((e): e is number => e !== undefined);
  const psnrDb = samples.reduce((sum, s, i) => sum + psnr(s.image, reconstructions[i]!), 0) / samples.length;
  const hairHueErrorDegrees = hueErrors.reduce((a, b) => a + b, 0) / Math.max(1, hueErrors.length);
  const eyeColourAgreement = identityAgreement['eye_colour']!;
  return {
    result: {
      samples: samples.length,
      psnrDb,
      hairHueErrorDegrees,
      hueSamples: hueErrors.length,
      eyeColourAgreement,
      identityAgreement,
      pixelColourAccuracy: Object.fromEntries([EYE_COLOUR, HAIR_COLOUR].map((a) => [a.name, colourAccuracy(a, samples, reconstructions)])),
      passed: hueErrors.length > 0 && hairHueErrorDegrees < VAE_GATE.maxHairHueErrorDegrees && eyeColourAgreement > VAE_GATE.minEyeColourAgreement,
    },
    reconstructions,
  };
}

function zoom(image: RgbImage, factor: number): RgbImage {
  const w = image.width * factor;
  const h = image.height * factor;
  const data = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / factor) * image.width + Math.floor(x / factor)) * 3;
      data.set(image.data.subarray(src, src + 3), (y * w + x) * 3);
    }
  }
  return { width: w, height: h, data };
}

/** Rows of originals, each followed by the row of their reconstructions, zoomed for a person to judge. */
export function reconstructionGrid(originals: readonly RgbImage[], reconstructions: readonly RgbImage[]): RgbImage {
  const count = Math.min(GRID_PAIRS, originals.length);
  const cells: RgbImage[] = [];
  for (let row = 0; row < count; row += GRID_COLUMNS) {
    const end = Math.min(count, row + GRID_COLUMNS);
    for (const source of [originals, reconstructions]) {
      for (let i = row; i < row + GRID_COLUMNS; i++) cells.push(zoom(i < end ? source[i]! : { ...source[0]!, data: new Float32Array(source[0]!.data.length).fill(1) }, GRID_ZOOM));
    }
  }
  return tile(cells, GRID_COLUMNS);
}

export async function runVaeGate(vae: WorldVae, params: ParamSet, options: { count?: number; grid?: string; fp16?: boolean } = {}): Promise<VaeGateResult> {
  const samples = splitSamples(worldAt(vae.imageSize), 'test', options.count ?? DEFAULT_GATE_SAMPLES);
  const { result, reconstructions } = await measureVaeGate(vae, options.fp16 ? roundToFloat16(params) : params, samples);
  if (options.grid) writeFileSync(options.grid, await encodePng(reconstructionGrid(samples.map((s) => s.image), reconstructions)));
  return result;
}
