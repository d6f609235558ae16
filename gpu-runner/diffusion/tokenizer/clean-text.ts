// Text normalization in front of the CLIP BPE, as openai/CLIP `simple_tokenizer.py` does it:
//   basic_clean(text)      = ftfy.fix_text(text) → html.unescape(html.unescape(·)) → strip()
//   whitespace_clean(text) = collapse runs of whitespace to one space → strip()
//   then lower-case.
// `fixText` covers the ftfy 6.1.1 `fix_text` steps that change well-formed Unicode text (its default config):
// HTML entities with semicolons (only when the line has no '<'), Latin ligatures, full-/half-width forms, curly
// quotes, line breaks, surrogates, terminal escapes, control characters, NFC, and mojibake repair (./mojibake.ts).
import { decodeHTML, decodeHTMLStrict } from 'entities';
import { fixC1Controls, fixEncoding } from './mojibake.ts';

// ftfy chardata.SINGLE_QUOTE_RE / DOUBLE_QUOTE_RE.
const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTES = /[\u201c-\u201f]/g;

// ftfy chardata.LIGATURES: Latin ligatures and digraphs only (other scripts' ligatures are left alone).
const LIGATURES: ReadonlyMap<string, string> = new Map([
  ['Ĳ', 'IJ'], ['ĳ', 'ij'], ['ŉ', 'ʼn'], ['Ǳ', 'DZ'], ['ǲ', 'Dz'], ['ǳ', 'dz'], ['Ǆ', 'DŽ'], ['ǅ', 'Dž'], ['ǆ', 'dž'],
  ['Ǉ', 'LJ'], ['ǈ', 'Lj'], ['ǉ', 'lj'], ['Ǌ', 'NJ'], ['ǋ', 'Nj'], ['ǌ', 'nj'],
  ['ﬀ', 'ff'], ['ﬁ', 'fi'], ['ﬂ', 'fl'], ['ﬃ', 'ffi'], ['ﬄ', 'ffl'], ['ﬅ', 'ſt'], ['ﬆ', 'st'],
]);
const LIGATURE_RE = new RegExp(`[${[...LIGATURES.keys()].join('')}]`, 'g');

// ftfy chardata.WIDTH_MAP: U+FF01..U+FFEF replaced by their NFKC form, and the ideographic space by a space.
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const IDEOGRAPHIC_SPACE = '\u3000';

// ftfy fixes.remove_terminal_escapes.
const ANSI_ESCAPE_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;

// ftfy chardata.CONTROL_CHARS: C0 controls except \t \n \f \r, DEL, deprecated Arabic format chars, BOM,
// interlinear annotation and object replacement characters.
const CONTROL_CHARS_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

const LONE_SURROGATE_RE = /[\ud800-\udfff]/gu;

// ftfy chardata.HTML_ENTITY_RE: only entities that end in a semicolon are decoded by ftfy.
const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** Whitespace as the `regex` module's `\s` sees it in Unicode strings (the White_Space property). */
const WHITESPACE_CLASS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
export const WHITESPACE_RUN_RE = new RegExp(`[${WHITESPACE_CLASS}]+`, 'g');
/** Python's `str.strip()` uses `str.isspace`, which adds the information separators U+1C..U+1F. */
const PY_STRIP_RE = new RegExp(`^[${WHITESPACE_CLASS}\\x1c-\\x1f]+|[${WHITESPACE_CLASS}\\x1c-\\x1f]+$`, 'g');

/** ftfy's `unescape_html`: semicolon-terminated HTML5 entities, plus all-caps spellings of lower-case ones. */
function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY_RE, (entity) => {
    if (entity.startsWith('&#')) {
      const decoded = pythonHtmlUnescape(entity);
      // If only part of the reference decoded, ftfy keeps the original (the semicolon must be consumed).
      return decoded.includes(';') ? entity : decoded;
    }
    const decoded = decodeHTMLStrict(entity);
    if (decoded !== entity) return decoded;
    // ftfy also decodes '&NTILDE;' as 'Ñ': the upper-cased name of an all-lower-case entity that is not itself one.
    const lower = entity.toLowerCase();
    if (entity === entity.toUpperCase() && lower !== entity) {
      const fromLower = decodeHTMLStrict(lower);
      if (fromLower !== lower) return fromLower.toUpperCase();
    }
    return entity;
  });
}

function fixCharacterWidth(text: string): string {
  return text.replace(WIDTH_RE, (char) => (char === IDEOGRAPHIC_SPACE ? ' ' : char.normalize('NFKC')));
}

function fixLineBreaks(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\u0085]/g, '\n');
}

function fixSurrogates(text: string): string {
  // JavaScript strings are UTF-16: with the `u` flag a proper pair is one code point, so only lone halves match.
  return text.replace(LONE_SURROGATE_RE, '\ufffd');
}

/** One pass of ftfy's fixers over one segment, in ftfy's order. */
function fixSegmentOnce(text: string, unescapeHtml: boolean): string {
  let fixed = unescapeHtml ? ftfyUnescapeHtml(text) : text;
  fixed = fixEncoding(fixed);
  fixed = fixC1Controls(fixed);
  fixed = fixed.replace(LIGATURE_RE, (char) => LIGATURES.get(char) ?? char);
  fixed = fixCharacterWidth(fixed);
  fixed = fixed.replace(DOUBLE_QUOTES, '"').replace(SINGLE_QUOTES, "'");
  fixed = fixLineBreaks(fixed);
  fixed = fixSurrogates(fixed);
  fixed = fixed.replace(ANSI_ESCAPE_RE, '');
  fixed = fixed.replace(CONTROL_CHARS_RE, '');
  return fixed.normalize('NFC');
}

/**
 * ftfy.fix_text (6.1.1, default config). Works line by line like ftfy; once a line
 * contains '<' the text may be HTML, so entity decoding stops for that line and every later one.
 */
export function fixText(text: string): string {
  const out: string[] = [];
  let unescapeHtml = true;
  let position = 0;
  while (position < text.length) {
    const newline = text.indexOf('\n', position);
    const end = newline === -1 ? text.length : newline + 1;
    let segment = text.slice(position, end);
    if (segment.includes('<')) unescapeHtml = false;
    // ftfy repeats its fixers until the segment stops changing.
    for (;;) {
      const fixed = fixSegmentOnce(segment, unescapeHtml);
      if (fixed === segment) break;
      segment = fixed;
    }
    out.push(segment);
    position = end;
  }
  return out.join('');
}

// Python html._invalid_charrefs: numeric references the HTML5 spec remaps (mostly Windows-1252 for 0x80-0x9F).
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'], [0x84, '\u201e'],
  [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'], [0x8a, '\u0160'], [0x8b, '\u2039'],
  [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'], [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'],
  [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'], [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'],
  [0x9a, '\u0161'], [0x9b, '\u203a'], [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** Python html._invalid_codepoints: references to these decode to nothing. */
function isInvalidCodepoint(code: number): boolean {
  return (
    (code >= 0x1 && code <= 0x8) ||
    code === 0xb ||
    (code >= 0xe && code <= 0x1f) ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0xfdd0 && code <= 0xfdef) ||
    (code & 0xfffe) === 0xfffe
  );
}

// Python html._charref: numeric references with optional ';', or up to 32 name characters with optional ';'.
const PYTHON_CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;
const MAX_CODEPOINT = 0x10ffff;

/**
 * Python's `html.unescape`: numeric references decoded with its exact remapping rules; named references (with or
 * without ';', longest legacy prefix) decoded by the HTML5 table of the `entities` package.
 */
export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(PYTHON_CHARREF_RE, (whole, body: string) => {
    if (body.startsWith('#')) {
      const hex = body[1] === 'x' || body[1] === 'X';
      const digits = body.slice(hex ? 2 : 1).replace(/;$/, '');
      const code = Number.parseInt(digits, hex ? 16 : 10);
      const remapped = INVALID_CHARREFS.get(code);
      if (remapped !== undefined) return remapped;
      if ((code >= 0xd800 && code <= 0xdfff) || code > MAX_CODEPOINT || !Number.isFinite(code)) return '\ufffd';
      if (isInvalidCodepoint(code)) return '';
      return String.fromCodePoint(code);
    }
    return decodeHTML(whole);
  });
}

/** Python `str.strip()`. */
export function pythonStrip(text: string): string {
  return text.replace(PY_STRIP_RE, '');
}

/** simple_tokenizer.basic_clean. */
export function basicClean(text: string): string {
  return pythonStrip(pythonHtmlUnescape(pythonHtmlUnescape(fixText(text))));
}

/** simple_tokenizer.whitespace_clean. */
export function whitespaceClean(text: string): string {
  return pythonStrip(text.replace(WHITESPACE_RUN_RE, ' '));
}

/** The exact text the CLIP BPE sees: basic_clean → whitespace_clean → lower-case. */
export function cleanPrompt(text: string): string {
  return whitespaceClean(basicClean(text)).toLowerCase();
}
