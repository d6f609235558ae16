import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { bytesToUnicode, loadBpeVocab } from './bpe-vocab.ts';
import { cleanPrompt, fixText, pythonHtmlUnescape } from './clean-text.ts';
import { looksLikeMojibake } from './mojibake.ts';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from './clip-tokenizer.ts';

const referenceSchema = z.object({
  prompts: z.array(
    z.object({
      prompt: z.string(),
      note: z.string(),
      ftfy_basic_clean_then_whitespace_clean: z.string(),
      bpe_tokens: z.array(z.string()),
      content_ids: z.array(z.number()),
      input_ids: z.array(z.number()),
      pooled_index: z.number(),
    }),
  ),
});
const reference = referenceSchema.parse(
  JSON.parse(readFileSync(referencePath('clip-tokenizer', 'reference_ids.json'), 'utf8')),
);

let tokenizer: ClipTokenizer;
const scratch = mkdtempSync(join(tmpdir(), 'clip-tokenizer-test-'));
beforeAll(() => {
  tokenizer = ClipTokenizer.load(BUNDLED_CLIP_VOCAB);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('parity with openai/CLIP simple_tokenizer + ftfy 6.1.1 (reference_ids.json)', () => {
  it('covers the reference prompts', () => {
    expect(reference.prompts.length).toBeGreaterThanOrEqual(30);
  });
  for (const [index, expected] of reference.prompts.entries()) {
    it(`#${index} ${expected.note}`, () => {
      expect(cleanPrompt(expected.prompt)).toBe(expected.ftfy_basic_clean_then_whitespace_clean);
      expect(tokenizer.bpeTokens(expected.prompt)).toEqual(expected.bpe_tokens);
      expect(tokenizer.encode(expected.prompt)).toEqual(expected.content_ids);
      const ids = tokenizer.tokenize(expected.prompt);
      expect(ids).toEqual(expected.input_ids);
      expect(ids.indexOf(tokenizer.eosId)).toBe(expected.pooled_index);
    });
  }
});

describe('parity on generated prompts (ftfy 6.1.1 + simple_tokenizer, computed in Python)', () => {
  const generated = z
    .object({ cases: z.array(z.object({ prompt: z.string(), clean: z.string(), ids: z.array(z.number()) })) })
    .parse(JSON.parse(readFileSync(new URL('./testdata-generated-prompts.json', import.meta.url), 'utf8')));

  it('cleans and encodes every generated prompt exactly as the Python reference', () => {
    expect(generated.cases.length).toBeGreaterThanOrEqual(250);
    const mismatches = generated.cases.filter((c) => cleanPrompt(c.prompt) !== c.clean || JSON.stringify(tokenizer.encode(c.prompt)) !== JSON.stringify(c.ids));
    expect(mismatches.map((c) => c.prompt)).toEqual([]);
  });
});

describe('vocabulary', () => {
  it('derives 49408 tokens from the merges with the special ids SD 1.5 uses', () => {
    expect(tokenizer.vocabSize).toBe(49408);
    expect(tokenizer.bosId).toBe(49406);
    expect(tokenizer.eosId).toBe(49407);
  });

  it('maps every byte to a distinct printable stand-in', () => {
    const table = bytesToUnicode();
    expect(new Set(table).size).toBe(256);
    expect(table[' '.charCodeAt(0)]).toBe('Ġ');
    expect(table['a'.charCodeAt(0)]).toBe('a');
  });

  it('loads the same vocabulary from a transformers vocab.json + merges.txt', () => {
    const vocab = loadBpeVocab(BUNDLED_CLIP_VOCAB);
    const folder = join(scratch, 'tokenizer');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder);
    writeFileSync(join(folder, 'vocab.json'), JSON.stringify(Object.fromEntries(vocab.encoder)));
    const merges = [...vocab.mergeRanks.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
    writeFileSync(join(folder, 'merges.txt'), ['#version: 0.2', ...merges, ''].join('\n'));
    const fromFolder = ClipTokenizer.load(folder);
    const fromJson = ClipTokenizer.load(join(folder, 'vocab.json'));
    for (const expected of reference.prompts) {
      expect(fromFolder.tokenize(expected.prompt)).toEqual(expected.input_ids);
    }
    expect(fromJson.tokenize('a photo of sks face')).toEqual(reference.prompts[0]!.input_ids);
  });

  it('bundles the openai merges file unchanged', () => {
    // sha256 of clip/bpe_simple_vocab_16e6.txt.gz at openai/CLIP d05afc436d78f1c48dc0dbf8e5980a9d471f35f6, the commit
    // the reference ids were computed with (test/fixtures/reference/clip-tokenizer/README.md).
    const digest = createHash('sha256').update(readFileSync(BUNDLED_CLIP_VOCAB)).digest('hex');
    expect(digest).toBe('924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a');
  });

  it('fails clearly on a missing or malformed vocabulary', () => {
    expect(() => ClipTokenizer.load(join(scratch, 'nope.txt.gz'))).toThrow(/tokenizer vocabulary not found/);
    writeFileSync(join(scratch, 'vocab.json'), '{"a": 1}');
    expect(() => ClipTokenizer.load(join(scratch, 'vocab.json'))).toThrow(/merges.txt must sit beside vocab.json/);
    writeFileSync(join(scratch, 'merges.txt'), '#version: 0.2\na b\n');
    expect(() => ClipTokenizer.load(join(scratch, 'vocab.json'))).toThrow(/lacks the special token <\|startoftext\|>/);
    writeFileSync(join(scratch, 'short.txt'), 'header\na b\n');
    expect(() => ClipTokenizer.load(join(scratch, 'short.txt'))).toThrow(/expected 48894 merges/);
  });
});

describe('framing and round trip', () => {
  it('truncates to BOS + 75 content ids + EOS and can pad with another id', () => {
    const ids = tokenizer.tokenize('a '.repeat(100));
    expect(ids).toHaveLength(77);
    expect(ids[76]).toBe(49407);
    expect(tokenizer.tokenize('a', { padId: 0 })).toEqual([49406, 320, 49407, ...new Array(74).fill(0)]);
  });

  it('decodes ids back to the cleaned text', () => {
    expect(tokenizer.decode(tokenizer.encode('Ein Foto von 東京, ﬁne!')).trim()).toBe('ein foto von 東京 , fine !');
  });
});

describe('text cleaning beyond the fixture prompts (ftfy 6.1.1 behaviours)', () => {
  it('expands Latin ligatures, narrows full-width forms, maps the ideographic space', () => {
    expect(fixText('ﬂuﬀy\u3000ＬＯＵＤ')).toBe('fluffy LOUD');
  });
  it('decodes semicolon entities and all-caps ones, but not when the line looks like HTML', () => {
    expect(fixText('P&EACUTE;REZ &ntilde; &#x2019;')).toBe("PÉREZ ñ '");
    expect(fixText('<b>&lt;3</b>')).toBe('<b>&lt;3</b>');
  });
  it("matches Python's html.unescape on legacy and numeric references", () => {
    expect(pythonHtmlUnescape('&amp &ampx &#x80; &#1; &#xD800; &notit;')).toBe('& &x €  \ufffd ¬it;');
  });
  it('repairs UTF-8 mojibake only where the badness heuristic sees it', () => {
    // UTF-8 read as Windows-1252, once and twice; curly quotes come back and are then uncurled.
    expect(fixText('cafÃ© crÃ¨me')).toBe('café crème');
    expect(fixText('doesnÃ¢â‚¬â„¢t')).toBe("doesn't");
    expect(fixText('â€œquotedâ€\u009d')).toBe('"quoted"');
    // A C1 control in Latin-1 text is the Windows-1252 character (U+0085 → ellipsis).
    expect(fixText('wait\u0085 what')).toBe('wait… what');
    // Legitimate accented text and symbols stay as they are.
    for (const text of ['Brontë… naïve', 'Zürich – 25 °C', 'Ελληνικά, русский', '¡Olé! ¿Qué?']) expect(fixText(text)).toBe(text);
    expect(looksLikeMojibake('crÃ¨me')).toBe(true);
    expect(looksLikeMojibake('crème')).toBe(false);
  });

  it('removes control characters and terminal escapes, normalizes line breaks and NFC', () => {
    expect(fixText('\x1b[36mblue\x1b[0m\x07 e\u0301\r\nnext')).toBe('blue é\nnext');
  });
});
