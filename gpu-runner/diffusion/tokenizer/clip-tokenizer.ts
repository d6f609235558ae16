// The CLIP BPE tokenizer (openai/CLIP `clip/simple_tokenizer.py`), with Stable Diffusion 1.5's framing:
// [BOS] + first 75 content ids + [EOS], padded to 77 with EOS (SD 1.5's tokenizer declares pad = <|endoftext|> and the
// pipelines call it with padding="max_length", max_length=77, truncation=True).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BpeVocab, END_OF_TEXT, END_OF_WORD, START_OF_TEXT, bytesToUnicode, loadBpeVocab } from './bpe-vocab.ts';
import { cleanPrompt } from './clean-text.ts';

/** openai's merges file shipped with the runner (see gpu-runner/assets/clip/LICENSE). */
export const BUNDLED_CLIP_VOCAB = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'assets',
  'clip',
  'bpe_simple_vocab_16e6.txt.gz',
);

/** CLIP's text context: 77 positions (CLIPTextConfig.max_position_embeddings). */
export const CLIP_MAX_LENGTH = 77;

/**
 * simple_tokenizer's pre-tokenizer pattern (compiled there with re.IGNORECASE): the special tokens, English
 * contractions, runs of letters, single digits, runs of other non-space symbols. `\s` is spelled out as the White_Space
 * set the `regex` module uses, since JavaScript's `\s` also matches U+FEFF.
 */
const PRETOKENIZE_RE =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\p{L}\p{N}]+/giu;

const BYTE_SYMBOLS = bytesToUnicode();
const UTF8 = new TextEncoder();

export interface FramingOptions {
  /** Total length including BOS/EOS (77 for every SD 1.x/2.x text encoder). */
  maxLength?: number;
  /** Padding id: EOS (49407) for SD 1.5; SD 2.x and openai `clip.tokenize` pad with 0. */
  padId?: number;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  private readonly decoder: Map<number, string>;
  /** bpe() results per pre-token, as simple_tokenizer caches them (prompts repeat words a lot). */
  private readonly cache = new Map<string, string[]>();

  constructor(private readonly vocab: BpeVocab) {
    this.bosId = this.idOf(START_OF_TEXT);
    this.eosId = this.idOf(END_OF_TEXT);
    this.decoder = new Map([...vocab.encoder].map(([token, id]) => [id, token]));
    this.cache.set(START_OF_TEXT, [START_OF_TEXT]);
    this.cache.set(END_OF_TEXT, [END_OF_TEXT]);
  }

  /** Loads from a `.txt.gz` merges file, a `vocab.json` (with `merges.txt` beside it) or a tokenizer folder. */
  static load(path: string): ClipTokenizer {
    return new ClipTokenizer(loadBpeVocab(path));
  }

  get vocabSize(): number {
    return this.vocab.encoder.size;
  }

  private idOf(token: string): number {
    const id = this.vocab.encoder.get(token);
    if (id === undefined) throw new Error(`token "${token}" is not in the CLIP vocabulary`);
    return id;
  }

  /** Byte-pair merges of one pre-token (already mapped to byte symbols): lowest-ranked pair first, until none apply. */
  bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const symbols = Array.from(token);
    let word = [...symbols.slice(0, -1), symbols[symbols.length - 1]! + END_OF_WORD];
    while (word.length > 1) {
      let bestRank = Number.POSITIVE_INFINITY;
      let bestPair = '';
      for (let i = 0; i < word.length - 1; i++) {
        const pair = `${word[i]} ${word[i + 1]}`;
        const rank = this.vocab.mergeRanks.get(pair);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestPair = pair;
        }
      }
      if (bestRank === Number.POSITIVE_INFINITY) break;
      const [first, second] = bestPair.split(' ') as [string, string];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }

  /** The BPE token strings of a prompt (after CLIP's text cleaning). */
  bpeTokens(text: string): string[] {
    const tokens: string[] = [];
    for (const match of cleanPrompt(text).matchAll(PRETOKENIZE_RE)) {
      const piece = match[0];
      const symbols = piece === START_OF_TEXT || piece === END_OF_TEXT ? piece : toByteSymbols(piece);
      tokens.push(...this.bpe(symbols));
    }
    return tokens;
  }

  /** Content ids of a prompt: no BOS/EOS, not truncated (simple_tokenizer.encode). */
  encode(text: string): number[] {
    return this.bpeTokens(text).map((token) => this.idOf(token));
  }

  /** Frames content ids the SD 1.5 way: BOS + content[:maxLength-2] + EOS, padded to maxLength. */
  frame(contentIds: readonly number[], options: FramingOptions = {}): number[] {
    const maxLength = options.maxLength ?? CLIP_MAX_LENGTH;
    const padId = options.padId ?? this.eosId;
    const ids = [this.bosId, ...contentIds.slice(0, maxLength - 2), this.eosId];
    while (ids.length < maxLength) ids.push(padId);
    return ids;
  }

  /** The 77 input ids SD 1.5's text encoder receives for a prompt. */
  tokenize(text: string, options: FramingOptions = {}): number[] {
    return this.frame(this.encode(text), options);
  }

  /** Ids back to text (byte symbols decoded as UTF-8, '</w>' as a space), like simple_tokenizer.decode. */
  decode(ids: readonly number[]): string {
    const symbolToByte = new Map(BYTE_SYMBOLS.map((symbol, byte) => [symbol, byte]));
    const text = ids.map((id) => this.decoder.get(id) ?? '').join('');
    const bytes: number[] = [];
    for (const char of text.replaceAll(END_OF_WORD, ' ')) {
      const byte = symbolToByte.get(char);
      if (byte !== undefined) bytes.push(byte);
      else bytes.push(...UTF8.encode(char));
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes));
  }
}

function toByteSymbols(piece: string): string {
  let out = '';
  for (const byte of UTF8.encode(piece)) out += BYTE_SYMBOLS[byte]!;
  return out;
}
