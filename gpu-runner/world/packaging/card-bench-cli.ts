// `npm run world:card-bench [-- --from bench/results/world.json]`: puts a `bench:world` run into the world pack's model
// card: its summary (settings, one row per method, the speed-up) as card/world-bench.json and its sample grid as
// card/world-bench-grid.png; then `npm run world:assemble-pack` renders them into the card's README.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { PACK_CARD_FOLDER } from '../../server/executors/model-pack.ts';
import { WORLD_BENCH_GRID, WORLD_BENCH_JSON } from './model-card.ts';
import { WORLD_PACK_DIR } from './world-pack.ts';

const stat = z.object({ mean: z.number(), sd: z.number(), n: z.number() });
const benchFile = z.object({
  measuredAt: z.string(),
  results: z.object({
    mode: z.string(),
    pack: z.object({ id: z.string(), sha256: z.string() }),
    settings: z.record(z.string(), z.unknown()),
    rows: z.array(
      z.object({
        label: z.string(),
        identitySimilarity: stat,
        promptFidelity: stat,
        referenceSimilarity: stat,
        medianTotalMs: z.number().nullable().optional(),
        steps: z.number().nullable().optional(),
        fileBytes: z.number().nullable().optional(),
      }),
    ),
    speedUp: z.object({ total: z.number(), optimizerSteps: z.number() }).nullable(),
    grid: z.object({ file: z.string() }),
  }),
});

const { values } = parseArgs({ options: { from: { type: 'string', default: 'bench/results/world.json' }, dir: { type: 'string' } }, strict: true });
const from = resolve(values.from);
const parsed = benchFile.safeParse(JSON.parse(readFileSync(from, 'utf8')));
if (!parsed.success) throw new Error(`${from} is not a bench:world result: ${z.prettifyError(parsed.error)}`);
const { measuredAt, results } = parsed.data;
const card = join(resolve(values.dir ?? WORLD_PACK_DIR), PACK_CARD_FOLDER);
copyFileSync(join(dirname(from), results.grid.file), join(card, WORLD_BENCH_GRID));
const summary = {
  measuredAt,
  mode: results.mode,
  pack: results.pack,
  settings: results.settings,
  speedUp: results.speedUp,
  rows: results.rows.map((row) => ({
    method: row.label,
    identitySimilarity: row.identitySimilarity,
    promptFidelity: row.promptFidelity,
    referenceSimilarity: row.referenceSimilarity,
    medianSeconds: row.medianTotalMs == null ? null : row.medianTotalMs / 1000,
    steps: row.steps ?? null,
    fileBytes: row.fileBytes ?? null,
  })),
};
writeFileSync(join(card, WORLD_BENCH_JSON), `${JSON.stringify(summary, null, 2)}\n`);
console.log(JSON.stringify({ wrote: [join(card, WORLD_BENCH_JSON), join(card, WORLD_BENCH_GRID)] }));
