// `npm run pack:tiny [-- <dir>] [--seed N]`: writes the tiny model pack.
import { parseArgs } from 'node:util';
import { DEFAULT_TINY_PACK_DIR, writeTinyPack } from '../pack/write-tiny-pack.ts';

const { values, positionals } = parseArgs({ options: { seed: { type: 'string', default: '0' } }, allowPositionals: true });
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
const started = performance.now();
const summary = writeTinyPack(positionals[0] ?? DEFAULT_TINY_PACK_DIR, seed);
const seconds = ((performance.now() - started) / 1000).toFixed(2);
console.log(JSON.stringify({ ...summary, seconds: Number(seconds) }));
