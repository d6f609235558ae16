// `npm run bench:sd`: SD 1.5 pieces on CPU.
// - tokenizer: vocabulary load time and throughput (prompts/s, tokens/s) on the reference prompts, with a cold BPE
//   cache (a fresh tokenizer per pass) and warm;
// - sampler overhead per denoising step at SD 1.5's 64×64 latents with classifier-free guidance (input scaling,
//   batching, guidance, scheduler update), for every scheduler: the sampler's own loop, with the UNet's place taken
//   by a precomputed prediction so that only the overhead is timed;
// - UNet forward time (tiny fixture UNet and full-size SD 1.5 at 64×64 latents): measured by `bench/sd-unet.ts`
//   (run here as a child process with --cfg, so batch 2 is timed as guidance runs it), and
// - the overhead as a share of the full-size UNet time at the same batch (target < 5%).
// Flags: --quick (fewer repeats), --reuse-unet (read bench/results/sd-unet.json instead of re-measuring),
// --tiny-unet-only (skip the full-size UNet, minutes on 2 cores and > 3 GB of random weights).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type DiffusionModels, generate } from '../gpu-runner/diffusion/sampler.ts';
import { SCHEDULER_CLASSES } from '../gpu-runner/diffusion/schedulers/index.ts';
import { SD15_SCHEDULER_CONFIG } from '../gpu-runner/diffusion/schedulers/sd15-config.ts';
import { loadBpeVocab } from '../gpu-runner/diffusion/tokenizer/bpe-vocab.ts';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../gpu-runner/diffusion/tokenizer/clip-tokenizer.ts';
import { referenceDir } from '../test/fixtures/reference-dir.ts';
import { medianMs, printTable, type Row, writeResults } from './report.ts';

const QUICK = process.argv.includes('--quick');
const REUSE_UNET = process.argv.includes('--reuse-unet');
const TINY_UNET_ONLY = process.argv.includes('--tiny-unet-only');
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const UNET_RESULTS = join(BENCH_DIR, 'results', 'sd-unet.json');
const TIMING = QUICK ? { warmup: 1, repeats: 3 } : { warmup: 2, repeats: 7 };
/** The target (docs/targets.md): the sampler's own work per step stays under 5% of a UNet forward. */
const OVERHEAD_TARGET_SHARE = 0.05;
/** SD 1.5 at 512×512: latents [1, 4, 64, 64]; CLIP ViT-L/14 text states [77, 768]. */
const SD15 = { latentChannels: 4, latentSize: 64, vaeScaleFactor: 8, scalingFactor: 0.18215, textLength: 77, hidden: 768 };
const OVERHEAD_STEPS = 25;

const promptsSchema = z.object({ prompts: z.array(z.object({ prompt: z.string() })) });

async function tokenizerRows(): Promise<Row[]> {
  const prompts = promptsSchema
    .parse(JSON.parse(readFileSync(join(referenceDir(), 'clip-tokenizer', 'reference_ids.json'), 'utf8')))
    .prompts.map((p) => p.prompt);
  const loadMs = await medianMs(() => loadBpeVocab(BUNDLED_CLIP_VOCAB), { warmup: 0, repeats: QUICK ? 1 : 3 });
  const vocab = loadBpeVocab(BUNDLED_CLIP_VOCAB);
  const warm = new ClipTokenizer(vocab);
  const tokens = prompts.reduce((sum, prompt) => sum + warm.encode(prompt).length, 0);
  const coldMs = await medianMs(() => {
    const fresh = new ClipTokenizer(vocab);
    for (const prompt of prompts) fresh.tokenize(prompt);
  }, TIMING);
  const warmMs = await medianMs(() => {
    for (const prompt of prompts) warm.tokenize(prompt);
  }, TIMING);
  return [
    { case: 'load bpe_simple_vocab_16e6.txt.gz', ms: loadMs, prompts: null, 'prompts/s': null, 'tokens/s': null },
    { case: 'tokenize, cold BPE cache', ms: coldMs, prompts: prompts.length, 'prompts/s': (prompts.length / coldMs) * 1000, 'tokens/s': (tokens / coldMs) * 1000 },
    { case: 'tokenize, warm BPE cache', ms: warmMs, prompts: prompts.length, 'prompts/s': (prompts.length / warmMs) * 1000, 'tokens/s': (tokens / warmMs) * 1000 },
  ];
}

/** Networks with SD 1.5's shapes whose outputs are precomputed, so generate() times only its own work. */
function fixedOutputModels(): DiffusionModels {
  const latentValues = SD15.latentChannels * SD15.latentSize * SD15.latentSize;
  const prediction = Float32Array.from({ length: 2 * latentValues }, (_, i) => Math.sin(i) * 0.5);
  const text = new Float32Array(2 * SD15.textLength * SD15.hidden);
  const image = new Float32Array(3 * (SD15.latentSize * SD15.vaeScaleFactor) ** 2);
  return {
    latentChannels: SD15.latentChannels,
    vaeScaleFactor: SD15.vaeScaleFactor,
    scalingFactor: SD15.scalingFactor,
    encodeText: async (_ids, batch) => text.subarray(0, batch * SD15.textLength * SD15.hidden),
    predictNoise: async (latents) => prediction.subarray(0, latents.length),
    decodeLatents: async () => image,
  };
}

async function overheadRows(tokenizer: ClipTokenizer): Promise<Array<Row & { overheadMs: number }>> {
  const models = fixedOutputModels();
  const rows: Array<Row & { overheadMs: number }> = [];
  for (const className of SCHEDULER_CLASSES) {
    const perStep: number[] = [];
    const runs = TIMING.warmup + TIMING.repeats;
    for (let run = 0; run < runs; run++) {
      const result = await generate(models, tokenizer, {
        prompt: 'a photo of sks face',
        seed: run,
        numInferenceSteps: OVERHEAD_STEPS,
        guidanceScale: 7.5,
        width: SD15.latentSize * SD15.vaeScaleFactor,
        height: SD15.latentSize * SD15.vaeScaleFactor,
        scheduler: { className, config: SD15_SCHEDULER_CONFIG },
      });
      if (run >= TIMING.warmup) perStep.push(...result.timings.steps.map((s) => s.overheadMs));
    }
    perStep.sort((a, b) => a - b);
    const overheadMs = perStep[Math.floor(perStep.length / 2)]!;
    rows.push({ scheduler: className, 'latents': '1×4×64×64 (CFG ×2)', 'overhead ms/step': overheadMs, overheadMs });
  }
  return rows;
}

const unetRowSchema = z.looseObject({ model: z.string(), batch: z.number(), latents: z.string(), forwardMs: z.number() });
const unetResultsSchema = z.looseObject({
  measuredAt: z.string(),
  results: z.looseObject({ tiny: z.array(unetRowSchema), full: z.array(unetRowSchema).nullable() }),
});
type UnetRow = z.infer<typeof unetRowSchema>;

/** UNet timings from bench/sd-unet.ts (re-measured unless --reuse-unet); null when neither is available. */
function unetTimings(): { measuredAt: string; tiny: UnetRow[]; full: UnetRow[] } | null {
  const script = join(BENCH_DIR, 'sd-unet.ts');
  if (!existsSync(script) && !existsSync(UNET_RESULTS)) return null;
  if (existsSync(script) && (!REUSE_UNET || !existsSync(UNET_RESULTS))) {
    const args = ['--import', 'tsx', script, '--cfg', ...(TINY_UNET_ONLY ? ['--tiny-only'] : [])];
    const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (run.status !== 0) throw new Error(`bench/sd-unet.ts failed (exit ${run.status})`);
  }
  const parsed = unetResultsSchema.parse(JSON.parse(readFileSync(UNET_RESULTS, 'utf8')));
  return { measuredAt: parsed.measuredAt, tiny: parsed.results.tiny, full: parsed.results.full ?? [] };
}

async function main(): Promise<void> {
  const tokenizer = ClipTokenizer.load(BUNDLED_CLIP_VOCAB);
  const tokenizerTable = await tokenizerRows();
  printTable('CLIP tokenizer (30 reference prompts)', tokenizerTable);

  const overhead = await overheadRows(tokenizer);
  const unet = unetTimings();
  const unetRows = unet ? [...unet.tiny, ...unet.full].map(({ model, batch, latents, forwardMs }) => ({ model, batch, latents, forwardMs })) : [];
  if (unet) printTable(`UNet forward on CPU (bench/sd-unet.ts, measured ${unet.measuredAt})`, unetRows);
  else console.log('\nUNet forward: bench/sd-unet.ts is not available, so the overhead share is not computed');

  // Guidance runs the UNet on a batch of 2 (uncond + cond); compare with that batch, else with batch 1.
  const full = unet?.full ?? [];
  const fullUnet = full.find((row) => row.batch === 2) ?? full.find((row) => row.batch === 1);
  const overheadTable = overhead.map(({ overheadMs, ...row }) => ({
    ...row,
    'full UNet ms': fullUnet?.forwardMs ?? null,
    'UNet batch': fullUnet?.batch ?? null,
    'share %': fullUnet ? (100 * overheadMs) / fullUnet.forwardMs : null,
    [`< ${OVERHEAD_TARGET_SHARE * 100}%`]: fullUnet ? overheadMs / fullUnet.forwardMs < OVERHEAD_TARGET_SHARE : null,
  }));
  printTable(`Sampler overhead per step (${OVERHEAD_STEPS} steps, guidance 7.5)`, overheadTable);
  const path = writeResults('sd', {
    tokenizer: tokenizerTable,
    unet: unetRows,
    samplerOverhead: overheadTable,
    targetShare: OVERHEAD_TARGET_SHARE,
    flags: { quick: QUICK, reuseUnet: REUSE_UNET, tinyUnetOnly: TINY_UNET_ONLY },
  });
  console.log(`\nresults: ${path}`);
}

await main();
