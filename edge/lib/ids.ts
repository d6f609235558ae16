// Ids are `<prefix>_<12 hex ms timestamp><16 hex random>`: they sort by creation time, so one (tenant, id) index
// serves lookups and cursor pagination, and the prefix tells a reader what an id names.
const TIMESTAMP_HEX_DIGITS = 12;

export const ID_PREFIXES = {
  tenant: 'ten',
  apiKey: 'key',
  subject: 'sub',
  subjectImage: 'img',
  personalization: 'psn',
  generation: 'gen',
  weights: 'wts',
  generationImage: 'gim',
} as const;
export type IdKind = keyof typeof ID_PREFIXES;

let lastTime = 0;

export function newId(kind: IdKind, now = Date.now()): string {
  // Strictly increasing within an isolate, so ids made in the same millisecond keep their creation order.
  lastTime = Math.max(now, lastTime + 1);
  const time = lastTime.toString(16).padStart(TIMESTAMP_HEX_DIGITS, '0');
  const random = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${ID_PREFIXES[kind]}_${time}${random}`;
}

export function looksLikeId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-f]{28}$`).test(value);
}
