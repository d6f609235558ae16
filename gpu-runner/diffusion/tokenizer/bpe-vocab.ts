// The CLIP BPE vocabulary, from either of its published forms:
// - openai/CLIP `bpe_simple_vocab_16e6.txt.gz`: only the merges; the vocabulary is derived the way
//   `simple_tokenizer.SimpleTokenizer.__init__` derives it (256 byte symbols, the same with '</w>', one token per
//   merge, then the two special tokens);
// - a diffusers/transformers `tokenizer/` folder: `vocab.json` (token → id) and `merges.txt`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const END_OF_WORD = '</w>';

/** simple_tokenizer keeps merges[1 : 49152 - 256 - 2 + 1]: the first line is a version header, and the vocabulary
 *  is capped at 49152 - 256 - 2 merges so that bytes + merges + specials fit CLIP's 49408 embedding rows. */
const OPENAI_MERGE_COUNT = 49152 - 256 - 2;

export interface BpeVocab {
  /** Token string → id. */
  encoder: Map<string, number>;
  /** Merge pair `"left right"` → rank (lower merges first). Tokens never contain a space (bytes map to printable
   *  stand-ins), so the space-joined pair is an unambiguous key. */
  mergeRanks: Map<string, number>;
}

/**
 * GPT-2/CLIP `bytes_to_unicode`: every byte gets a printable stand-in character. Printable Latin-1 bytes map to
 * themselves; the rest (controls, space, 0x7F-0xA0, 0xAD) map to U+0100 onwards in byte order.
 */
export function bytesToUnicode(): string[] {
  const printable = new Set<number>();
  const addRange = (from: number, to: number) => {
    for (let b = from; b <= to; b++) printable.add(b);
  };
  addRange('!'.charCodeAt(0), '~'.charCodeAt(0));
  addRange('¡'.charCodeAt(0), '¬'.charCodeAt(0));
  addRange('®'.charCodeAt(0), 'ÿ'.charCodeAt(0));
  const table = new Array<string>(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + next++);
  }
  return table;
}

/** The byte symbols in simple_tokenizer's vocabulary order: the printable bytes first, then the remapped ones. */
function byteSymbolsInVocabOrder(): string[] {
  const table = bytesToUnicode();
  const printableFirst: string[] = [];
  const remapped: string[] = [];
  table.forEach((symbol, byte) => (symbol.charCodeAt(0) === byte ? printableFirst : remapped).push(symbol));
  return [...printableFirst, ...remapped];
}

function parseMergeLine(line: string, lineNumber: number, source: string): [string, string] {
  const parts = line.split(/\s+/).filter((part) => part.length > 0);
  if (parts.length !== 2) {
    throw new Error(`${source}:${lineNumber}: a merge line must hold two symbols, got "${line}"`);
  }
  return [parts[0]!, parts[1]!];
}

function mergeRanksOf(merges: Array<[string, string]>): Map<string, number> {
  return new Map(merges.map(([left, right], rank) => [`${left} ${right}`, rank]));
}

/** Builds the vocabulary from openai's merges file (gzip or plain text). */
export function vocabFromOpenAiMerges(text: string, source = 'bpe merges'): BpeVocab {
  const lines = text.split('\n').slice(1, OPENAI_MERGE_COUNT + 1);
  if (lines.length < OPENAI_MERGE_COUNT) {
    throw new Error(`${source}: expected ${OPENAI_MERGE_COUNT} merges after the header line, found ${lines.length}`);
  }
  const merges = lines.map((line, index) => parseMergeLine(line, index + 2, source));
  const bytes = byteSymbolsInVocabOrder();
  const tokens = [
    ...bytes,
    ...bytes.map((symbol) => symbol + END_OF_WORD),
    ...merges.map(([left, right]) => left + right),
    START_OF_TEXT,
    END_OF_TEXT,
  ];
  return { encoder: new Map(tokens.map((token, id) => [token, id])), mergeRanks: mergeRanksOf(merges) };
}

const vocabJsonSchema = z.record(z.string(), z.number().int().nonnegative());

/** Builds the vocabulary from a transformers `vocab.json` and `merges.txt` ('#version' header line skipped). */
export function vocabFromJson(vocabJson: string, mergesText: string, source = 'tokenizer'): BpeVocab {
  let parsed: unknown;
  try {
    parsed = JSON.parse(vocabJson);
  } catch (error) {
    throw new Error(`${source}/vocab.json is not valid JSON: ${(error as Error).message}`);
  }
  const vocab = vocabJsonSchema.safeParse(parsed);
  if (!vocab.success) throw new Error(`${source}/vocab.json must map token strings to integer ids`);
  const merges = mergesText
    .split('\n')
    .map((line, index) => ({ line: line.replace(/\r$/, ''), lineNumber: index + 1 }))
    .filter(({ line, lineNumber }) => line.trim().length > 0 && !(lineNumber === 1 && line.startsWith('#version')))
    .map(({ line, lineNumber }) => parseMergeLine(line, lineNumber, `${source}/merges.txt`));
  const encoder = new Map(Object.entries(vocab.data));
  for (const special of [START_OF_TEXT, END_OF_TEXT]) {
    if (!encoder.has(special)) throw new Error(`${source}/vocab.json lacks the special token ${special}`);
  }
  return { encoder, mergeRanks: mergeRanksOf(merges) };
}

/**
 * Loads a vocabulary from a path: a `.gz` (or `.txt`) openai merges file, a `vocab.json` with `merges.txt` beside
 * it, or a folder holding either (a diffusers `tokenizer/` folder).
 */
export function loadBpeVocab(path: string): BpeVocab {
  if (!existsSync(path)) throw new Error(`tokenizer vocabulary not found: ${path}`);
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'vocab.json'))) return loadBpeVocab(join(path, 'vocab.json'));
    const openai = join(path, 'bpe_simple_vocab_16e6.txt.gz');
    if (existsSync(openai)) return loadBpeVocab(openai);
    throw new Error(`${path}: no vocab.json + merges.txt and no bpe_simple_vocab_16e6.txt.gz in this folder`);
  }
  if (path.endsWith('.json')) {
    const merges = join(dirname(path), 'merges.txt');
    if (!existsSync(merges)) throw new Error(`${path}: merges.txt must sit beside vocab.json (looked for ${merges})`);
    return vocabFromJson(readFileSync(path, 'utf8'), readFileSync(merges, 'utf8'), dirname(path));
  }
  const raw = readFileSync(path);
  const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return vocabFromOpenAiMerges(text, path);
}
