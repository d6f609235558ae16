// `npm run world:card-bench [-- --from bench/results/world.json]`: puts a `bench:world` run into the world pack's model
// card: its summary (settings, one row per method, the speed-up) as card/world-bench.json and its sample grid as
// card/world-bench-grid.png, and bench:world-ablation's and bench:world-curve's results found beside it; then `npm run world:assemble-pack` renders them into the card's README.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { PACK_CARD_FOLDER } from '../pack/model-pack.ts';
import { WORLD_ABLATION_JSON, WORLD_BENCH_GRID, WORLD_BENCH_JSON, WORLD_CURVE_JSON, WORLD_CURVE_PNG } from '../world/packaging/model-card.ts';
import { WORLD_PACK_DIR } from '../pack/world-pack.ts';

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
    speedUp: z.object({ total: z.number(), optimizerSteps: z.number(), perFace: z.object({ min: z.number(), max: z.number() }).nullable().optional() }).nullable(),
    paired: z.object({ identity: stat, fidelity: stat, identityWins: z.number() }).nullable().optional(),
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
  paired: results.paired ? { identity: results.paired.identity, fidelity: results.paired.fidelity, identityWins: results.paired.identityWins } : null,
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
const wrote = [join(card, WORLD_BENCH_JSON), join(card, WORLD_BENCH_GRID)];

// bench:world-ablation and bench:world-curve results beside it, when present, go into the card too.
const ablationFrom = join(dirname(from), 'world-ablation.json');
if (existsSync(ablationFrom)) {
  const { measuredAt: at, results: ablation } = JSON.parse(readFileSync(ablationFrom, 'utf8')) as { measuredAt: string; results: { settings: unknown; ordering: unknown; rows: { variant: string; label: string; identitySimilarity: unknown; promptFidelity: unknown; medianTotalMs: number | null }[] } };
  const rows = ablation.rows.map((r) => ({ variant: r.variant, method: r.label, identitySimilarity: r.identitySimilarity, promptFidelity: r.promptFidelity, medianSeconds: r.medianTotalMs == null ? null : r.medianTotalMs / 1000 }));
  writeFileSync(join(card, WORLD_ABLATION_JSON), `${JSON.stringify({ measuredAt: at, settings: ablation.settings, ordering: ablation.ordering, rows }, null, 2)}\n`);
  wrote.push(join(card, WORLD_ABLATION_JSON));
}
const curveFrom = join(dirname(from), 'world-curve.json');
if (existsSync(curveFrom) && existsSync(join(dirname(from), WORLD_CURVE_PNG))) {
  const { measuredAt: at, results: curve } = JSON.parse(readFileSync(curveFrom, 'utf8')) as { measuredAt: string; results: { settings: unknown; curves: unknown; reference: unknown; atEqualIdentity: unknown } };
  writeFileSync(join(card, WORLD_CURVE_JSON), `${JSON.stringify({ measuredAt: at, settings: curve.settings, curves: curve.curves, reference: curve.reference, atEqualIdentity: curve.atEqualIdentity }, null, 2)}\n`);
  copyFileSync(join(dirname(from), WORLD_CURVE_PNG), join(card, WORLD_CURVE_PNG));
  wrote.push(join(card, WORLD_CURVE_JSON), join(card, WORLD_CURVE_PNG));
}
console.log(JSON.stringify({ wrote }));
