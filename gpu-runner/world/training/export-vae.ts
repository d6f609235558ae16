// Writes a trained VAE into the pack in the diffusers layout (`config.json` with the measured scaling factor +
// `diffusion_pytorch_model.safetensors`, fp16 when that keeps the gate), beside its gate figures, a reconstruction grid
// and a model card generated from the run's own records. The command: gpu-runner/commands/world-export-vae.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitSamples, worldAt } from './vae-data.ts';
import { DEFAULT_GATE_SAMPLES, runVaeGate, VAE_GATE, type VaeGateResult } from './vae-gate.ts';
import { roundToFloat16, VAE_WEIGHTS_FILE, writeVaePack } from './vae-params.ts';
import { loadSafetensors } from '../../io/safetensors.ts';
import { WORLD_PACK_DIR } from '../../pack/world-pack.ts';
import { scalingFactorOf, VaeReconstructor } from './vae-reconstruct.ts';
import { LATEST_CHECKPOINT, PROGRESS_FILE } from './run-settings.ts';
import { DEFAULT_VAE_RUN_DIR, readVaeCheckpoint } from './train-vae.ts';

export const WORLD_VAE_PACK_DIR = join(WORLD_PACK_DIR, 'vae');
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Renders whose latents set the scaling factor (train split, like the data the UNet will see). */
const SCALING_SAMPLES = 512;
/** fp16 storage is kept when it changes PSNR by less than this and the gate's verdict not at all. */
const FP16_MAX_PSNR_DROP_DB = 0.1;

interface RunSummary {
  minutes: number;
  lastProgress: Record<string, unknown> | undefined;
  /** Where each segment began and the run length it was given (a resume may change it; the cosine follows). */
  segments: { fromStep: number; totalSteps: number }[];
}

/** Training minutes over every segment of the run (a resume starts a new segment) and the last progress line. */
function summarizeProgress(path: string): RunSummary {
  if (!existsSync(path)) return { minutes: 0, lastProgress: undefined, segments: [] };
  const segments: RunSummary['segments'] = [];
  let minutes = 0;
  let segment = 0;
  let lastProgress: Record<string, unknown> | undefined;
  for (const line of readFileSync(path, 'utf8').split('\n').filter(Boolean)) {
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record['event'] === 'started' || record['event'] === 'resumed') {
      minutes += segment;
      segment = 0;
      segments.push({ fromStep: Number(record['step']), totalSteps: Number((record['settings'] as { steps: number }).steps) });
    }
    if (record['event'] === 'progress') {
      segment = Number(record['elapsedMinutes']);
      lastProgress = record;
    }
    if (record['event'] === 'stopped' || record['event'] === 'finished') segment = Number(record['minutes']);
  }
  return { minutes: minutes + segment, lastProgress, segments };
}

/** A run this one was fine-tuned from (`--init`), as far back as the records go. */
interface Ancestor {
  readonly init: string;
  readonly step?: number;
  readonly minutes?: number;
  readonly settings?: object;
}

/** Follows `settings.init` back: training checkpoints of other runs (with their progress), then a pack. */
function lineage(init: string | undefined): Ancestor[] {
  const chain: Ancestor[] = [];
  for (let next = init; next !== undefined; ) {
    const path = isAbsolute(next) ? next : join(REPO_ROOT, next);
    if (path.endsWith('.safetensors') && existsSync(path) && loadSafetensors(path).metadata['vaeConfig'] !== undefined) {
      const { step, settings } = readVaeCheckpoint(path);
      chain.push({ init: next, step, minutes: summarizeProgress(join(dirname(path), PROGRESS_FILE)).minutes, settings });
      next = settings.init;
    } else {
      const weights = path.endsWith('.safetensors') ? path : join(path, VAE_WEIGHTS_FILE);
      const step = existsSync(weights) ? loadSafetensors(weights).metadata['training_step'] : undefined;
      chain.push({ init: next, ...(step === undefined ? {} : { step: Number(step) }) });
      next = undefined;
    }
  }
  return chain;
}

function describeLineage(chain: readonly Ancestor[]): string {
  if (chain.length === 0) return 'from a fresh initialization';
  return `fine-tuned (\`--init\`) from ${chain
    .map((a) => (a.settings ? `a run of ${a.step} steps (${a.minutes?.toFixed(0)} min, settings \`${JSON.stringify(a.settings)}\`)` : `the weights in \`${a.init}\`${a.step === undefined ? '' : ` (trained ${a.step} steps)`}`))
    .join(', itself started from ')}`;
}

function modelCard(info: { step: number; settings: object; config: object; minutes: number; last: Record<string, unknown> | undefined; segments: RunSummary['segments']; lineage: readonly Ancestor[]; scalingFactor: number; dtype: string; bytes: number; gate: VaeGateResult; params: number }): string {
  const g = info.gate;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return `# World VAE (tiny pack, stage 1)

AutoencoderKL with Stable Diffusion 1.5's topology (DownEncoderBlock2D/UpDecoderBlock2D, mid-block attention,
4 latent channels) at tiny widths, trained by this repository's ONNX engine on renders of the synthetic
face world's TRAIN identities (32 px → 8 × 8 × 4 latents). Files in the diffusers layout: \`config.json\`,
\`diffusion_pytorch_model.safetensors\` (${info.dtype}, ${(info.bytes / 1e6).toFixed(2)} MB, ${info.params.toLocaleString('en')} parameters).

## How it was trained
- \`npm run world:train-vae\` (\`gpu-runner/world/training/train-vae.ts\`), ${info.step} steps in ${info.minutes.toFixed(0)} minutes
  on a shared 2-core CPU, ${describeLineage(info.lineage)}; loss MSE + L1 + 1e-5 · mean KL on images in [−1, 1], reparameterized sample with seeded noise.
- Settings: \`${JSON.stringify(info.settings)}\` (AdamW, linear warm-up then cosine decay, global-norm clipping).
- Run segments (the run was stopped and resumed; a resume may set a new total, the cosine then follows it from the
  current step): ${info.segments.map((s) => `from step ${s.fromStep} with total ${s.totalSteps}`).join('; ')}.
- Last logged training figures: ${info.last ? `loss ${Number(info.last['loss']).toFixed(4)}, MSE ${Number(info.last['mse']).toFixed(4)}, L1 ${Number(info.last['l1']).toFixed(4)}, mean KL ${Number(info.last['kl']).toFixed(3)}` : 'none'}.
- \`scaling_factor\` = 1 / std(latents) = ${info.scalingFactor.toFixed(5)}, measured on ${SCALING_SAMPLES} train renders (posterior means).
- Config: \`${JSON.stringify(info.config)}\`.

## Quality gate (docs/world.md, stage 1), ${g.samples} renders of held-out TEST identities, with the stored weights
\`npm run world:vae-gate -- --pack gpu-runner/world/pack/vae\`; the evaluator is \`gpu-runner/world/evaluators\` (trained on renders only).

| Figure | Value | Gate |
|---|---|---|
| Hair hue error (mean hue of the hair pixels, original vs reconstruction; ${g.hueSamples} samples with coloured hair) | ${g.hairHueErrorDegrees.toFixed(1)}° | < ${VAE_GATE.maxHairHueErrorDegrees}° |
| Eye-colour agreement (evaluator's eye_colour head, reconstruction vs original) | ${pct(g.eyeColourAgreement)} | > ${pct(VAE_GATE.minEyeColourAgreement)} |
| PSNR | ${g.psnrDb.toFixed(2)} dB | (reported) |
${Object.entries(g.identityAgreement).map(([head, v]) => `| ${head} agreement | ${pct(v)} | (reported) |`).join('\n')}
${Object.entries(g.pixelColourAccuracy).map(([name, v]) => `| ${name} accuracy, evaluator-free colour probe (${v.visible} samples where visible) | ${pct(v.accuracy)} | (reported) |`).join('\n')}

**Gate ${g.passed ? 'PASSED' : 'NOT PASSED'}.**

\`reconstructions.png\`: rows of held-out renders, each followed by the row of their reconstructions (4× zoom).
`;
}

export async function exportVae(checkpoint: string, out: string, count = DEFAULT_GATE_SAMPLES): Promise<{ gate: VaeGateResult; dtype: string; scalingFactor: number }> {
  const { vae, params, step, settings } = readVaeCheckpoint(checkpoint);
  const ancestors = lineage(settings.init); // before `out` is overwritten: it may be where the run started from
  const reconstructor = await VaeReconstructor.open(vae, params);
  const { latents } = await reconstructor.run(splitSamples(worldAt(vae.imageSize), 'train', SCALING_SAMPLES).map((s) => s.image));
  await reconstructor.close();
  const scalingFactor = scalingFactorOf(latents);

  const full = await runVaeGate(vae, params, { count });
  const half = await runVaeGate(vae, roundToFloat16(params), { count });
  const useHalf = half.passed === full.passed && full.psnrDb - half.psnrDb < FP16_MAX_PSNR_DROP_DB;
  const stored = useHalf ? roundToFloat16(params) : params;
  mkdirSync(out, { recursive: true });
  const gate = await runVaeGate(vae, stored, { count, grid: join(out, 'reconstructions.png') });
  const files = writeVaePack(out, vae, stored, scalingFactor, useHalf ? 'F16' : 'F32', { training_step: String(step) });
  const progress = summarizeProgress(join(dirname(checkpoint), PROGRESS_FILE));
  writeFileSync(join(out, 'gate.json'), `${JSON.stringify({ step, gate, float32: full, float16: half, stored: files.dtype, scalingFactor }, null, 2)}\n`);
  const paramCount = Object.values(params).reduce((n, p) => n + p.length, 0);
  writeFileSync(join(out, 'README.md'), modelCard({ step, settings, config: { ...vae.json, scaling_factor: scalingFactor }, minutes: progress.minutes, last: progress.lastProgress, segments: progress.segments, lineage: ancestors, scalingFactor, dtype: files.dtype, bytes: files.bytes, gate, params: paramCount }));
  return { gate, dtype: files.dtype, scalingFactor };
}
