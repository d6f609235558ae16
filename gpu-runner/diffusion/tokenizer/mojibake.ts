// Mojibake repair as ftfy 6.1.1 `fix_encoding` does it (ftfy by Robyn Speer, Apache-2.0), reimplemented:
// text that was UTF-8 but got decoded with a single-byte codepage (Latin-1, Windows-125x, MacRoman, CP437) is encoded
// back to those bytes and decoded as UTF-8 — only when ftfy's "badness" heuristic says the text looks like mojibake,
// which keeps legitimate accented text untouched.

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

// ---------- character classes of the badness heuristic (ftfy/badness.py MOJIBAKE_CATEGORIES) ----------
const COMMON = '\u00a0\u00ad\u00b7\u00b4\u2013\u2014\u2015\u2026\u2019';
const C1 = '\u0080-\u009f';
const BAD = '\u00a6\u00a4\u00a8\u00ac\u00af\u00b6\u00a7\u00b8\u0192\u02c6\u02c7\u02d8\u02db\u02dc\u2020\u2021\u2030\u2310\u25ca\ufffd\u00aa\u00ba';
const CURRENCY = '\u00a2\u00a3\u00a5\u20a7\u20ac';
const START_PUNCTUATION = '\u00a1\u00ab\u00bf\u00a9\u0384\u0385\u2018\u201a\u201c\u201e\u2022\u2039\uf8ff';
const END_PUNCTUATION = '\u00ae\u00bb\u02dd\u201d\u203a\u2122';
const NUMERIC =
  '\u00b2\u00b3\u00b9\u00b1\u00bc\u00bd\u00be\u00d7\u00b5\u00f7\u2044\u2202\u2206\u220f\u2211\u221a\u221e\u2229\u222b\u2248\u2260\u2261\u2264\u2265\u2116';
const KAOMOJI = '\u00d2-\u00d6\u00d9-\u00dc\u00f2-\u00f6\u00f8-\u00fc\u0150\u00b0';
const UPPER_ACCENTED =
  '\u00c0-\u00d1\u00d8\u00dc\u00dd\u0102\u0104\u0106\u010c\u010e\u0110\u0118\u011a\u011e\u0130\u0139\u013d\u0141\u0143\u0147\u0152\u0158\u015a\u015e\u0160\u0162\u0164\u016e\u0170\u0178\u0179\u017b\u017d\u0490';
const LOWER_ACCENTED =
  '\u00df\u00e0-\u00f1\u0103\u0105\u0107\u010d\u010f\u0111\u0119\u011b\u011f\u013a\u013e\u0142\u0153\u0155\u015b\u015f\u0161\u0165\u00fc\u017a\u017c\u017e\u0491\ufb01\ufb02';
const UPPER_COMMON = '\u00de\u0391-\u03a9\u0386\u0388\u0389\u038a\u038c\u038e\u038f\u03aa\u03ab\u0401-\u042f';
const LOWER_COMMON = '\u03b1-\u03c9\u03ac\u03ad\u03ae\u03af\u03b0\u0430-\u045f';
const BOX = '\u2502\u250c\u2510\u2518\u251c\u2524\u252c\u253c\u2550-\u256c\u2580\u2584\u2588\u258c\u2590\u2591\u2592\u2593';

/** `[...]` of the concatenated classes. */
const cls = (...parts: string[]) => `[${parts.join('')}]`;
const ACCENTED = LOWER_ACCENTED + UPPER_ACCENTED;
const PUNCTUATION = START_PUNCTUATION + END_PUNCTUATION;

// Unlikely juxtapositions of those classes (ftfy/badness.py BADNESS_RE), one alternative per line.
const BADNESS_ALTERNATIVES = [
  cls(C1),
  cls(BAD, ACCENTED, BOX, PUNCTUATION, CURRENCY, NUMERIC) + cls(BAD),
  '[a-zA-Z]' + cls(LOWER_COMMON, UPPER_COMMON) + cls(BAD),
  cls(BAD) + cls(ACCENTED, BOX, PUNCTUATION, CURRENCY, NUMERIC),
  cls(LOWER_ACCENTED, LOWER_COMMON, BOX, END_PUNCTUATION, CURRENCY, NUMERIC) + cls(UPPER_ACCENTED),
  cls(BOX, END_PUNCTUATION, CURRENCY, NUMERIC) + cls(LOWER_ACCENTED),
  cls(LOWER_ACCENTED, BOX, END_PUNCTUATION) + cls(CURRENCY),
  '\\s' + cls(UPPER_ACCENTED) + cls(CURRENCY),
  cls(UPPER_ACCENTED, BOX) + cls(NUMERIC),
  cls(ACCENTED, BOX, CURRENCY, END_PUNCTUATION) + cls(START_PUNCTUATION) + cls(NUMERIC),
  cls(ACCENTED, CURRENCY, NUMERIC, BOX) + cls(END_PUNCTUATION) + cls(START_PUNCTUATION),
  cls(CURRENCY, NUMERIC, BOX) + cls(START_PUNCTUATION),
  '[a-z]' + cls(UPPER_ACCENTED) + cls(START_PUNCTUATION, CURRENCY),
  cls(BOX) + cls(KAOMOJI),
  cls(ACCENTED, CURRENCY, NUMERIC, PUNCTUATION) + cls(BOX),
  cls(BOX) + cls(END_PUNCTUATION),
  // Python's \w is Unicode-aware; JavaScript's is ASCII-only even with the u flag.
  cls(ACCENTED) + cls(END_PUNCTUATION) + '[\\p{L}\\p{N}_]',
  '[\u0152\u0153][^A-Za-z]',
  '[\u00c2\u00c3\u00ce\u00d0]' + cls('\u20ac\u0160\u0161\u00a2\u00a3\u0178\u017e\u00a0\u00ad\u00ae\u00a9\u00b0\u00b7\u00bb', PUNCTUATION, '\u2013\u2014\u00b4'),
  '\u00d7[\u00b2\u00b3]',
  ('[\u00d8\u00d9]' + cls(COMMON, CURRENCY, BAD, NUMERIC, START_PUNCTUATION, '\u0178\u0160\u00ae\u00b0\u00b5\u00bb')).repeat(2),
  '\u00e0[\u00b2\u00b5\u00b9\u00bc\u00bd\u00be]',
  '\u221a[\u00b1\u2202\u2020\u2260\u00ae\u2122\u00b4\u2264\u2265\u00a5\u00b5\u00f8]',
  '\u2248[\u00b0\u00a2]',
  '\u201a\u00c4[\u00ec\u00ee\u00ef\u00f2\u00f4\u00fa\u00f9\u00fb\u2020\u00b0\u00a2\u03c0]',
  '\u201a[\u00e2\u00f3][\u00e0\u00e4\u00b0\u00ea]',
  '\u0432\u0402',
  '[\u0412\u0413\u0420\u0421]' + cls(C1, BAD, PUNCTUATION, CURRENCY, '\u00b0\u00b5') + '[\u0412\u0413\u0420\u0421]',
  '\u0413\u045e\u0412\u0402\u0412.[A-Za-z ]',
  '\u00c3[\u00a0\u00a1]',
  '[a-z]\\s?[\u00c3\u00c2][ ]',
  '^[\u00c3\u00c2][ ]',
  '[a-z.,?!' + END_PUNCTUATION + ']\u00c2[ ' + PUNCTUATION + ']',
  '\u03b2\u20ac[\u2122\u00a0\u0386\u00ad\u00ae\u00b0]',
  '[\u0392\u0393\u039e\u039f]' + cls(C1, BAD, PUNCTUATION, CURRENCY, '\u00b0') + '[\u0392\u0393\u039e\u039f]',
];
const BADNESS_RE = new RegExp(BADNESS_ALTERNATIVES.join('|'), 'u');

/** ftfy `is_bad`: does the text contain a character sequence that is far likelier mojibake than intended? */
export function looksLikeMojibake(text: string): boolean {
  return BADNESS_RE.test(text);
}

// ---------- the single-byte codepages ftfy tries, in its order (chardata.CHARMAP_ENCODINGS) ----------
// Bytes 0x80..0xFF of each codepage, as Python's codecs decode them (unassigned bytes of the Windows codepages pass
// through as Latin-1, which is what ftfy's "sloppy" codecs do). Tables rather than TextDecoder: Node decodes the
// label windows-1252 as plain Latin-1, and CP437 is not a WHATWG encoding.
const WINDOWS_1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178' +
  '\u00a0\u00a1\u00a2\u00a3\u00a4\u00a5\u00a6\u00a7\u00a8\u00a9\u00aa\u00ab\u00ac\u00ad\u00ae\u00af\u00b0\u00b1\u00b2\u00b3\u00b4\u00b5\u00b6\u00b7\u00b8\u00b9\u00ba\u00bb\u00bc\u00bd\u00be\u00bf' +
  '\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf\u00d0\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d7\u00d8\u00d9\u00da\u00db\u00dc\u00dd\u00de\u00df' +
  '\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef\u00f0\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f7\u00f8\u00f9\u00fa\u00fb\u00fc\u00fd\u00fe\u00ff';
const WINDOWS_1251_HIGH =
  '\u0402\u0403\u201a\u0453\u201e\u2026\u2020\u2021\u20ac\u2030\u0409\u2039\u040a\u040c\u040b\u040f\u0452\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u0098\u2122\u0459\u203a\u045a\u045c\u045b\u045f' +
  '\u00a0\u040e\u045e\u0408\u00a4\u0490\u00a6\u00a7\u0401\u00a9\u0404\u00ab\u00ac\u00ad\u00ae\u0407\u00b0\u00b1\u0406\u0456\u0491\u00b5\u00b6\u00b7\u0451\u2116\u0454\u00bb\u0458\u0405\u0455\u0457' +
  '\u0410\u0411\u0412\u0413\u0414\u0415\u0416\u0417\u0418\u0419\u041a\u041b\u041c\u041d\u041e\u041f\u0420\u0421\u0422\u0423\u0424\u0425\u0426\u0427\u0428\u0429\u042a\u042b\u042c\u042d\u042e\u042f' +
  '\u0430\u0431\u0432\u0433\u0434\u0435\u0436\u0437\u0438\u0439\u043a\u043b\u043c\u043d\u043e\u043f\u0440\u0441\u0442\u0443\u0444\u0445\u0446\u0447\u0448\u0449\u044a\u044b\u044c\u044d\u044e\u044f';
const WINDOWS_1250_HIGH =
  '\u20ac\u0081\u201a\u0083\u201e\u2026\u2020\u2021\u0088\u2030\u0160\u2039\u015a\u0164\u017d\u0179\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u0098\u2122\u0161\u203a\u015b\u0165\u017e\u017a' +
  '\u00a0\u02c7\u02d8\u0141\u00a4\u0104\u00a6\u00a7\u00a8\u00a9\u015e\u00ab\u00ac\u00ad\u00ae\u017b\u00b0\u00b1\u02db\u0142\u00b4\u00b5\u00b6\u00b7\u00b8\u0105\u015f\u00bb\u013d\u02dd\u013e\u017c' +
  '\u0154\u00c1\u00c2\u0102\u00c4\u0139\u0106\u00c7\u010c\u00c9\u0118\u00cb\u011a\u00cd\u00ce\u010e\u0110\u0143\u0147\u00d3\u00d4\u0150\u00d6\u00d7\u0158\u016e\u00da\u0170\u00dc\u00dd\u0162\u00df' +
  '\u0155\u00e1\u00e2\u0103\u00e4\u013a\u0107\u00e7\u010d\u00e9\u0119\u00eb\u011b\u00ed\u00ee\u010f\u0111\u0144\u0148\u00f3\u00f4\u0151\u00f6\u00f7\u0159\u016f\u00fa\u0171\u00fc\u00fd\u0163\u02d9';
const WINDOWS_1253_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u0088\u2030\u008a\u2039\u008c\u008d\u008e\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u0098\u2122\u009a\u203a\u009c\u009d\u009e\u009f' +
  '\u00a0\u0385\u0386\u00a3\u00a4\u00a5\u00a6\u00a7\u00a8\u00a9\u00aa\u00ab\u00ac\u00ad\u00ae\u2015\u00b0\u00b1\u00b2\u00b3\u0384\u00b5\u00b6\u00b7\u0388\u0389\u038a\u00bb\u038c\u00bd\u038e\u038f' +
  '\u0390\u0391\u0392\u0393\u0394\u0395\u0396\u0397\u0398\u0399\u039a\u039b\u039c\u039d\u039e\u039f\u03a0\u03a1\u00d2\u03a3\u03a4\u03a5\u03a6\u03a7\u03a8\u03a9\u03aa\u03ab\u03ac\u03ad\u03ae\u03af' +
  '\u03b0\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6\u03b7\u03b8\u03b9\u03ba\u03bb\u03bc\u03bd\u03be\u03bf\u03c0\u03c1\u03c2\u03c3\u03c4\u03c5\u03c6\u03c7\u03c8\u03c9\u03ca\u03cb\u03cc\u03cd\u03ce\u00ff';
const WINDOWS_1254_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u008e\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u009e\u0178' +
  '\u00a0\u00a1\u00a2\u00a3\u00a4\u00a5\u00a6\u00a7\u00a8\u00a9\u00aa\u00ab\u00ac\u00ad\u00ae\u00af\u00b0\u00b1\u00b2\u00b3\u00b4\u00b5\u00b6\u00b7\u00b8\u00b9\u00ba\u00bb\u00bc\u00bd\u00be\u00bf' +
  '\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf\u011e\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d7\u00d8\u00d9\u00da\u00db\u00dc\u0130\u015e\u00df' +
  '\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef\u011f\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f7\u00f8\u00f9\u00fa\u00fb\u00fc\u0131\u015f\u00ff';
const ISO_8859_2_HIGH =
  '\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f' +
  '\u00a0\u0104\u02d8\u0141\u00a4\u013d\u015a\u00a7\u00a8\u0160\u015e\u0164\u0179\u00ad\u017d\u017b\u00b0\u0105\u02db\u0142\u00b4\u013e\u015b\u02c7\u00b8\u0161\u015f\u0165\u017a\u02dd\u017e\u017c' +
  '\u0154\u00c1\u00c2\u0102\u00c4\u0139\u0106\u00c7\u010c\u00c9\u0118\u00cb\u011a\u00cd\u00ce\u010e\u0110\u0143\u0147\u00d3\u00d4\u0150\u00d6\u00d7\u0158\u016e\u00da\u0170\u00dc\u00dd\u0162\u00df' +
  '\u0155\u00e1\u00e2\u0103\u00e4\u013a\u0107\u00e7\u010d\u00e9\u0119\u00eb\u011b\u00ed\u00ee\u010f\u0111\u0144\u0148\u00f3\u00f4\u0151\u00f6\u00f7\u0159\u016f\u00fa\u0171\u00fc\u00fd\u0163\u02d9';
const MACROMAN_HIGH =
  '\u00c4\u00c5\u00c7\u00c9\u00d1\u00d6\u00dc\u00e1\u00e0\u00e2\u00e4\u00e3\u00e5\u00e7\u00e9\u00e8\u00ea\u00eb\u00ed\u00ec\u00ee\u00ef\u00f1\u00f3\u00f2\u00f4\u00f6\u00f5\u00fa\u00f9\u00fb\u00fc' +
  '\u2020\u00b0\u00a2\u00a3\u00a7\u2022\u00b6\u00df\u00ae\u00a9\u2122\u00b4\u00a8\u2260\u00c6\u00d8\u221e\u00b1\u2264\u2265\u00a5\u00b5\u2202\u2211\u220f\u03c0\u222b\u00aa\u00ba\u03a9\u00e6\u00f8' +
  '\u00bf\u00a1\u00ac\u221a\u0192\u2248\u2206\u00ab\u00bb\u2026\u00a0\u00c0\u00c3\u00d5\u0152\u0153\u2013\u2014\u201c\u201d\u2018\u2019\u00f7\u25ca\u00ff\u0178\u2044\u20ac\u2039\u203a\ufb01\ufb02' +
  '\u2021\u00b7\u201a\u201e\u2030\u00c2\u00ca\u00c1\u00cb\u00c8\u00cd\u00ce\u00cf\u00cc\u00d3\u00d4\uf8ff\u00d2\u00da\u00db\u00d9\u0131\u02c6\u02dc\u00af\u02d8\u02d9\u02da\u00b8\u02dd\u02db\u02c7';
const CP437_HIGH =
  '\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192' +
  '\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510' +
  '\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580' +
  '\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0';

/** Byte 0x1A stands for a byte lost to U+FFFD in ftfy's "sloppy" codecs. */
const SUBSTITUTE_BYTE = 0x1a;

interface Codepage {
  name: string;
  /** Character → byte for every character the codepage can produce. */
  encode: Map<string, number>;
  sloppy: boolean;
}

function codepage(name: string, high: string, sloppy: boolean): Codepage {
  const encode = new Map<string, number>();
  for (let b = 0; b < 0x80; b++) if (!(sloppy && b === SUBSTITUTE_BYTE)) encode.set(String.fromCharCode(b), b);
  Array.from(high).forEach((char, i) => encode.set(char, 0x80 + i));
  if (sloppy) encode.set('\ufffd', SUBSTITUTE_BYTE);
  return { name, encode, sloppy };
}

const LATIN1_HIGH = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join('');

let codepages: Codepage[] | null = null;
function allCodepages(): Codepage[] {
  codepages ??= [
    codepage('latin-1', LATIN1_HIGH, false),
    codepage('sloppy-windows-1252', WINDOWS_1252_HIGH, true),
    codepage('sloppy-windows-1251', WINDOWS_1251_HIGH, true),
    codepage('sloppy-windows-1250', WINDOWS_1250_HIGH, true),
    codepage('sloppy-windows-1253', WINDOWS_1253_HIGH, true),
    codepage('sloppy-windows-1254', WINDOWS_1254_HIGH, true),
    codepage('iso-8859-2', ISO_8859_2_HIGH, false),
    codepage('macroman', MACROMAN_HIGH, false),
    codepage('cp437', CP437_HIGH, false),
  ];
  return codepages;
}

/** The codepage bytes of `text`, or null when a character is outside it. */
function encodeIn(text: string, page: Codepage): Uint8Array | null {
  const out = new Uint8Array(text.length);
  let i = 0;
  for (const char of text) {
    const byte = page.encode.get(char);
    if (byte === undefined) return null;
    out[i++] = byte;
  }
  return out.subarray(0, i);
}

// ---------- byte-level repairs applied before re-decoding (ftfy/fixes.py, chardata.py) ----------
/** UTF-8 sequences that would be valid had a Windows program not turned byte A0 into a space (ALTERED_UTF8_RE). */
const ALTERED_UTF8 = new RegExp(
  [
    '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9] ',
    '[\\xe2\\xe3] [\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]',
    '[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf] ',
    '\\xf0 [\\x80-\\xbf][\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf] [\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf][\\x80-\\xbf] ',
  ].join('|'),
  'g',
);
const HAS_ALTERED_UTF8 = new RegExp(ALTERED_UTF8.source);
/** "à" followed by a space is usually 'à' + NBSP mangled, except in a few Catalan/Portuguese words. */
const A_GRAVE_WORD = /\xc3 (?! |quele|quela|quilo|s )/g;
/** UTF-8 sequences whose continuation bytes were lost to U+FFFD (byte 1A) in a sloppy codec (LOSSY_UTF8_RE). */
const LOSSY_UTF8 = new RegExp(
  [
    '[\\xc2-\\xdf]\\x1a',
    '[\\xc2-\\xc3][?]',
    '\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]',
    '\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]',
    '[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]',
    '[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]',
    '\\x1a',
  ].join('|'),
  'g',
);
const REPLACEMENT_UTF8 = '\xef\xbf\xbd';

// Byte strings are handled as "binary" JS strings (one char per byte, U+0000..U+00FF) so regexes can run on them.
const bytesToBinary = (bytes: Uint8Array) => String.fromCharCode(...bytes);
const binaryToBytes = (binary: string) => Uint8Array.from(binary, (char) => char.charCodeAt(0));

function restoreByteA0(binary: string): string {
  return binary.replace(A_GRAVE_WORD, '\xc3\xa0 ').replace(ALTERED_UTF8, (match) => match.replaceAll(' ', '\xa0'));
}

// ---------- UTF-8 embedded in otherwise fine text (chardata.UTF8_CLUES / UTF8_DETECTOR_RE) ----------
const UTF8_FIRST_OF_2 =
  '\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf\u00d0\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d7\u00d8\u00d9\u00da\u00db\u00dc\u00dd\u00de\u00df' +
  '\u0102\u0106\u010c\u010e\u0110\u0118\u011a\u011e\u0130\u0139\u0143\u0147\u0150\u0158\u015e\u0162\u016e\u0170' +
  '\u0392-\u03a9\u03aa\u03ab\u03ac\u03ad\u03ae\u03af\u0412-\u042f';
const UTF8_FIRST_OF_3 =
  '\u00e0-\u00ef\u0103\u0107\u010d\u010f\u0119\u011b\u013a\u0155\u03b0-\u03bf\u0430-\u043f';
const UTF8_FIRST_OF_4 = '\u00f0\u00f3\u0111\u011f\u03c0\u03c3\u0440\u0443';
const UTF8_CONTINUATION_STRICT =
  '\u0080-\u00bf\u0104\u0105\u013d\u013e\u0141\u0142\u0152\u0153\u015a\u015b\u015e\u015f\u0160\u0161\u0164\u0165\u0178\u0179\u017a\u017b\u017c\u017d\u017e\u0192\u02c6\u02c7\u02d8\u02db\u02dc\u02dd\u0384\u0385' +
  '\u0386\u0388\u0389\u038a\u038c\u038e\u038f\u0401-\u040c\u040e\u040f\u0451-\u045c\u045e\u045f\u0490\u0491' +
  '\u2020\u2021\u2022\u2030\u2039\u203a\u20ac\u2116\u2122';
const UTF8_CONTINUATION = `${UTF8_CONTINUATION_STRICT}\u2013\u2014\u2015\u2018\u2019\u201a\u201c\u201d\u201e\u2026 `;
const UTF8_DETECTOR = new RegExp(
  `(?<![${UTF8_CONTINUATION_STRICT}])(?:[${UTF8_FIRST_OF_2}][${UTF8_CONTINUATION}]|[${UTF8_FIRST_OF_3}][${UTF8_CONTINUATION}]{2}|[${UTF8_FIRST_OF_4}][${UTF8_CONTINUATION}]{3})+`,
  'gu',
);

const C1_CONTROLS = /[\u0080-\u009f]/g;
const HAS_C1_CONTROL = /[\u0080-\u009f]/;

/** CESU-8 surrogate pairs (each half as a 3-byte sequence) and Java's modified-UTF-8 NUL (C0 80). */
const UTF8_VARIANT_SEQUENCE = /\xed([\xa0-\xaf])([\x80-\xbf])\xed([\xb0-\xbf])([\x80-\xbf])|\xc0\x80/g;

/** ftfy's utf-8-variants codec: UTF-8 that also accepts CESU-8 surrogate pairs and C0 80; anything else strict. */
function decodeUtf8Variants(binary: string): string {
  let out = '';
  let last = 0;
  for (const match of binary.matchAll(UTF8_VARIANT_SEQUENCE)) {
    out += UTF8_STRICT.decode(binaryToBytes(binary.slice(last, match.index)));
    if (match[0] === '\xc0\x80') out += '\0';
    else {
      const [high1, high2, low1, low2] = match.slice(1, 5).map((c) => c!.charCodeAt(0)) as [number, number, number, number];
      const high = 0xd000 | ((high1 & 0x3f) << 6) | (high2 & 0x3f);
      const low = 0xd000 | ((low1 & 0x3f) << 6) | (low2 & 0x3f);
      out += String.fromCharCode(high, low);
    }
    last = match.index + match[0].length;
  }
  return out + UTF8_STRICT.decode(binaryToBytes(binary.slice(last)));
}

/** One step of ftfy's fix_encoding: the first repair that applies, or the text unchanged. */
function fixEncodingStep(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text) || !looksLikeMojibake(text)) return text;
  const possible: string[] = [];
  for (const page of allCodepages()) {
    const encoded = encodeIn(text, page);
    if (!encoded) continue;
    possible.push(page.name);
    let binary = bytesToBinary(encoded);
    if (HAS_ALTERED_UTF8.test(binary)) binary = restoreByteA0(binary);
    if (page.sloppy) binary = binary.replace(LOSSY_UTF8, REPLACEMENT_UTF8);
    try {
      // Bytes ED (surrogate halves) or C0 (Java's NUL) call for ftfy's lenient "utf-8-variants" decoder.
      return /[\xed\xc0]/.test(binary) ? decodeUtf8Variants(binary) : UTF8_STRICT.decode(binaryToBytes(binary));
    } catch {
      // Not UTF-8 in this codepage: remember it and try the next one.
    }
  }
  const embedded = text.replace(UTF8_DETECTOR, (match) =>
    match.length < text.length && looksLikeMojibake(match) ? fixEncoding(match) : match,
  );
  if (embedded !== text) return embedded;
  // Latin-1 text holding C1 controls was meant as Windows-1252 (ftfy tests for the non-sloppy name, which is never in
  // its list, so this always tries the strict decode).
  if (possible.includes('latin-1')) {
    const strict = strictWindows1252(text);
    if (strict !== null && strict !== text) return strict;
  }
  return fixC1Controls(text);
}

/** ftfy fix_c1_controls: C1 control characters read as their Windows-1252 characters, as web browsers do. */
export function fixC1Controls(text: string): string {
  if (!HAS_C1_CONTROL.test(text)) return text;
  const sloppy1252 = allCodepages()[1]!;
  const decode = new Map([...sloppy1252.encode].map(([char, byte]) => [byte, char]));
  return text.replace(C1_CONTROLS, (char) => decode.get(char.charCodeAt(0)) ?? char);
}

/** Bytes Windows-1252 leaves unassigned (a strict decoder refuses them). */
const WINDOWS_1252_UNASSIGNED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** Latin-1 text re-read as strict Windows-1252 (null when a byte is unassigned there). */
function strictWindows1252(text: string): string | null {
  const bytes = encodeIn(text, allCodepages()[0]!);
  if (!bytes || bytes.some((b) => WINDOWS_1252_UNASSIGNED.has(b))) return null;
  return Array.from(bytes, (b) => (b < 0x80 ? String.fromCharCode(b) : WINDOWS_1252_HIGH[b - 0x80]!)).join('');
}

/** ftfy.fix_encoding: repeat the repair steps until the text stops changing. */
export function fixEncoding(text: string): string {
  let current = text;
  for (;;) {
    const fixed = fixEncodingStep(current);
    if (fixed === current) return fixed;
    current = fixed;
  }
}
