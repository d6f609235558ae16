// Command line of the GPU runner's model code.
//   npx tsx gpu-runner/cli.ts tokenize <vocab-file> "<prompt>"   → the 77 SD 1.5 input ids as a JSON array
//   npx tsx gpu-runner/cli.ts parity <fixture-dir>               → one JSON line per parity check; exit 1 on a failure
import { ClipTokenizer } from './diffusion/tokenizer/clip-tokenizer.ts';

const USAGE = `usage:
  gpu-runner/cli.ts tokenize <vocab-file> "<prompt>"
      vocab-file: openai bpe_simple_vocab_16e6.txt.gz, a vocab.json with merges.txt beside it, or a tokenizer folder
  gpu-runner/cli.ts parity <fixture-dir>
      fixture-dir: a folder of the sd15-tiny layout (unet/, text_encoder/, vae/, schedulers/, lora/; any subset)`;

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
      const { runParityCli } = await import('./parity/run.ts');
      return runParityCli(fixtureDir);
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
