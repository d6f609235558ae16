// Command line of the GPU runner's model code.
//   npx tsx gpu-runner/commands/sd15.ts tokenize <vocab-file> "<prompt>"   → the 77 SD 1.5 input ids as a JSON array
//   npx tsx gpu-runner/commands/sd15.ts parity <fixture-dir>               → one JSON line per parity check; exit 1 on a failure
//   npx tsx gpu-runner/commands/sd15.ts generate <model-dir> "<prompt>" [options] → PNG files (see USAGE)
import { parseArgs } from 'node:util';
import { ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer.ts';

const USAGE = `usage:
  gpu-runner/commands/sd15.ts tokenize <vocab-file> "<prompt>"
      vocab-file: openai bpe_simple_vocab_16e6.txt.gz, a vocab.json with merges.txt beside it, or a tokenizer folder
  gpu-runner/commands/sd15.ts parity <fixture-dir>
      fixture-dir: a folder of the sd15-tiny layout (unet/, text_encoder/, vae/, schedulers/, lora/; any subset)
  gpu-runner/commands/sd15.ts generate <model-dir> "<prompt>" [--negative TEXT] [--seed N] [--steps N] [--guidance G]
      [--scheduler CLASS] [--width W] [--height H] [--batch B] [--out PREFIX]
      model-dir: a diffusers SD 1.5 folder; writes PREFIX-<seed>.png per image (default PREFIX: ./image)`;

const GENERATE_DEFAULTS = { seed: '0', steps: '25', guidance: '7.5', width: '512', height: '512', batch: '1', out: 'image' };

async function generateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      negative: { type: 'string', default: '' },
      seed: { type: 'string', default: GENERATE_DEFAULTS.seed },
      steps: { type: 'string', default: GENERATE_DEFAULTS.steps },
      guidance: { type: 'string', default: GENERATE_DEFAULTS.guidance },
      scheduler: { type: 'string' },
      width: { type: 'string', default: GENERATE_DEFAULTS.width },
      height: { type: 'string', default: GENERATE_DEFAULTS.height },
      batch: { type: 'string', default: GENERATE_DEFAULTS.batch },
      out: { type: 'string', default: GENERATE_DEFAULTS.out },
    },
  });
  const [modelDir, prompt] = positionals;
  if (modelDir === undefined || prompt === undefined || positionals.length !== 2) return -1;
  const { writeFileSync } = await import('node:fs');
  const { loadStableDiffusion } = await import('../diffusion/pipeline.ts');
  const { generate, imagesToPng } = await import('../diffusion/sampler.ts');
  const sd = loadStableDiffusion(modelDir);
  try {
    const request = {
      prompt,
      negativePrompt: values.negative,
      seed: Number(values.seed),
      numInferenceSteps: Number(values.steps),
      guidanceScale: Number(values.guidance),
      width: Number(values.width),
      height: Number(values.height),
      batchSize: Number(values.batch),
      scheduler: values.scheduler ? { ...sd.scheduler, className: values.scheduler } : sd.scheduler,
      onStep: (step: number, total: number) => process.stderr.write(`step ${step}/${total}\r`),
    };
    const result = await generate(sd.models, sd.tokenizer, request);
    const pngs = await imagesToPng(result.images, request.batchSize, request.width, request.height);
    pngs.forEach((png, b) => {
      const path = `${values.out}-${result.seeds[b]}.png`;
      writeFileSync(path, png);
      process.stdout.write(`${JSON.stringify({ path, seed: result.seeds[b] })}\n`);
    });
    return 0;
  } finally {
    await sd.models.release();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'tokenize': {
      const [vocabPath, prompt] = args;
      if (vocabPath === undefined || prompt === undefined || args.length !== 2) break;
      process.stdout.write(`${JSON.stringify(ClipTokenizer.load(vocabPath).tokenize(prompt))}\n`);
      return 0;
    }
    case 'parity': {
      const [fixtureDir] = args;
      if (fixtureDir === undefined || args.length !== 1) break;
      const { runParityCli } = await import('../parity/run.ts');
      return runParityCli(fixtureDir);
    }
    case 'generate': {
      const code = await generateCommand(args);
      if (code >= 0) return code;
      break;
    }
    default:
      break;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
