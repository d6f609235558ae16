// Tokenizer parity against a `reference_ids.json` (clip-tokenizer layout): for every prompt, the 77 input ids must
// equal the reference exactly. The file is looked up in the fixture folder, its `clip-tokenizer/` sub-folder, or a
// sibling `clip-tokenizer/` folder (the reference root keeps it beside `sd15-tiny/`).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../diffusion/tokenizer/clip-tokenizer.ts';
import { type ParityCheck, type ParityResult, compare, failure } from './check.ts';

const COMPONENT = 'tokenizer';
const REFERENCE_FILE = 'reference_ids.json';
const OPENAI_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';
/** Token ids are integers: any difference is a failure. */
const ID_TOLERANCE = 0;

const referenceSchema = z.looseObject({
  prompts: z.array(
    z.looseObject({
      prompt: z.string(),
      note: z.string().optional(),
      input_ids: z.array(z.number().int()),
    }),
  ),
});

export function findTokenizerReference(fixtureDir: string): string | undefined {
  return [
    join(fixtureDir, REFERENCE_FILE),
    join(fixtureDir, 'clip-tokenizer', REFERENCE_FILE),
    join(fixtureDir, '..', 'clip-tokenizer', REFERENCE_FILE),
  ].find((path) => existsSync(path));
}

export const tokenizerParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (fixtureDir) => findTokenizerReference(fixtureDir) !== undefined,
  *run(fixtureDir): Iterable<ParityResult> {
    const path = findTokenizerReference(fixtureDir)!;
    let prompts: z.infer<typeof referenceSchema>['prompts'];
    let tokenizer: ClipTokenizer;
    try {
      prompts = referenceSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).prompts;
      const besideReference = join(dirname(path), OPENAI_VOCAB_FILE);
      tokenizer = ClipTokenizer.load(existsSync(besideReference) ? besideReference : BUNDLED_CLIP_VOCAB);
    } catch (error) {
      yield failure(COMPONENT, REFERENCE_FILE, ID_TOLERANCE, error);
      return;
    }
    for (const [index, expected] of prompts.entries()) {
      const caseName = `prompt${String(index).padStart(2, '0')}${expected.note ? ` (${expected.note})` : ''}`;
      try {
        const maxLength = expected.input_ids.length;
        yield compare(COMPONENT, caseName, tokenizer.tokenize(expected.prompt, { maxLength }), expected.input_ids, ID_TOLERANCE);
      } catch (error) {
        yield failure(COMPONENT, caseName, ID_TOLERANCE, error);
      }
    }
  },
};
