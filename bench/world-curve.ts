// `npm run bench:world-curve [-- --pack <dir>] [--identities N] [--prompts N]`: identity against wall-clock time for
// HyperDreamBooth, LiDB from zero and DreamBooth-LoRA on the world pack's TEST faces. Each point is a personalization
// run with that many optimizer steps (seeded draws indexed by step, so a shorter run is the longer run's start), scored
// like bench:world. Reports the speed-up at equal identity: the time each baseline needs to reach HyperDreamBooth's
// identity at its default steps, over HyperDreamBooth's time. Writes bench/results/world-curve.json and
// world-curve.png.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { shutdownSharedSessionHost } from '../gpu-runner/onnx/runtime/index.ts';
import { loadModelPack } from '../gpu-runner/pack/model-pack.ts';
import { WorldEvaluator } from '../gpu-runner/world/evaluators/evaluator.ts';
import { type CurvePoint, curveSvg, type MethodCurve, timeToReach } from '../gpu-runner/world/benchmark/curve.ts';
import { runWorldBenchmark } from '../gpu-runner/world/benchmark/harness.ts';
import { type BenchmarkMethod, FULL_SETTINGS, parseSettings } from '../gpu-runner/world/benchmark/settings.ts';
import { summarize } from '../gpu-runner/world/benchmark/summary.ts';
import { printTable, writeResults } from './report.ts';

const { values: flags } = parseArgs({
  options: { pack: { type: 'string' }, identities: { type: 'string', default: '4' }, prompts: { type: 'string', default: '3' }, images: { type: 'string', default: '1' } },
  strict: true,
});
const settings = parseSettings({ ...FULL_SETTINGS, identities: Number(flags.identities), prompts: Number(flags.prompts), imagesPerPrompt: Number(flags.images), referenceRows: false });
const hdbSteps = settings.steps.hyperdreambooth;
/** Step counts per method: up to each method's benchmark default (HyperDreamBooth's 0 is the prediction alone). */
const SCHEDULE: { method: string; runs: { method: BenchmarkMethod; steps: number }[] }[] = [
  { method: 'HyperDreamBooth', runs: [{ method: 'hyper-only', steps: 0 }, ...[hdbSteps / 4, hdbSteps / 2, hdbSteps].map((s) => ({ method: 'hyperdreambooth' as const, steps: Math.max(1, Math.round(s)) }))] },
  { method: 'LiDB from zero', runs: [50, 100, 200, 400].map((steps) => ({ method: 'lidb-zero' as const, steps })) },
  { method: 'DreamBooth-LoRA', runs: [150, 300, 600, 1200].map((steps) => ({ method: 'dreambooth-lora' as const, steps })) },
];

const log = (line: string) => console.error(`[bench:world-curve] ${line}`);
const started = performance.now();
const pack = await loadModelPack(flags.pack, (warning) => log(`warning: ${warning}`));
const evaluator = await WorldEvaluator.open();
const curves: MethodCurve[] = [];
for (const entry of SCHEDULE) {
  const points: CurvePoint[] = [];
  for (const run of entry.runs) {
    const result = await runWorldBenchmark({ pack, evaluator, settings: { ...settings, methods: [run.method], steps: { ...settings.steps, [run.method]: Math.max(1, run.steps) } }, log });
    const row = summarize(result)[0]!;
    points.push({ steps: run.steps, seconds: row.medianTotalMs! / 1000, identity: row.identitySimilarity.mean, fidelity: row.promptFidelity.mean });
    log(`${entry.method} ${run.steps} steps: identity ${row.identitySimilarity.mean.toFixed(3)}, ${(row.medianTotalMs! / 1000).toFixed(2)} s`);
  }
  curves.push({ method: entry.method, points });
}
await evaluator.close();

const hdb = curves[0]!.points.at(-1)!;
const atEqualIdentity = curves.slice(1).map((curve) => {
  const seconds = timeToReach(curve.points, hdb.identity);
  const best = curve.points.reduce((a, b) => (b.identity > a.identity ? b : a));
  return {
    method: curve.method,
    secondsToReach: seconds,
    speedUp: seconds === null ? null : seconds / hdb.seconds,
    // When the baseline never reaches it: its best identity and the time it took (a lower bound on the speed-up).
    best: { identity: best.identity, seconds: best.seconds, speedUpLowerBound: best.seconds / hdb.seconds },
  };
});
printTable(
  `bench:world-curve pack ${pack.id}: ${settings.identities} TEST identities × ${settings.prompts} prompts × ${settings.imagesPerPrompt} images`,
  curves.flatMap((c) => c.points.map((p) => ({ method: c.method, steps: p.steps, 'seconds (median)': p.seconds.toFixed(2), identity: p.identity.toFixed(3), fidelity: p.fidelity.toFixed(3) }))),
);
printTable(
  `time to reach HyperDreamBooth's identity (${hdb.identity.toFixed(3)} at ${hdbSteps} steps, ${hdb.seconds.toFixed(2)} s)`,
  atEqualIdentity.map((a) => ({
    method: a.method,
    'seconds to reach': a.secondsToReach === null ? `never (best ${a.best.identity.toFixed(3)} at ${a.best.seconds.toFixed(1)} s)` : a.secondsToReach.toFixed(2),
    'speed-up at equal identity': a.speedUp === null ? `> ${a.best.speedUpLowerBound.toFixed(1)}×` : `${a.speedUp.toFixed(1)}×`,
  })),
);
const png = join(dirname(fileURLToPath(import.meta.url)), 'results', 'world-curve.png');
const svg = curveSvg(curves, `identity vs time, ${pack.id} (${settings.identities} TEST faces)`, { label: `its identity at ${hdbSteps} steps`, identity: hdb.identity });
const path = writeResults('world-curve', { pack: { id: pack.id, sha256: pack.sha256 }, settings, curves, reference: hdb, atEqualIdentity, wallSeconds: (performance.now() - started) / 1000 });
await sharp(Buffer.from(svg)).png().toFile(png);
console.log(`wrote ${path} and ${png}`);
await shutdownSharedSessionHost();
