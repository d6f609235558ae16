// Scheduler parity against `<fixture>/schedulers/`:
// - `schedulers.json`: every entry with a `config` (under `schedulers.<Class>` or at the top level, e.g.
//   `<Class>_diffusers_<version>`): alphas_cumprod, init_noise_sigma, timesteps.<N>, sigmas.<N>,
//   timesteps_by_spacing.<spacing>.<N>, init_noise_sigma_after_set_timesteps.<N>;
// - every `rollout_*.safetensors`: the diffusers sampling loop replayed with the file's `model_outputs`
//   (class and config from the file's metadata), comparing initial latents, timesteps, each step's model input,
//   prev_sample and pred_original_sample, and the final latents. Stochastic schedulers (Euler ancestral) need the
//   reference's noise per step as `stepNN.noise`.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { parsePythonJson } from '../io/python-json.ts';
import { SafetensorsFile, toFloat32, toFloat64 } from '../io/safetensors.ts';
import { SCHEDULER_CLASSES, createScheduler } from '../diffusion/schedulers/index.ts';
import type { Scheduler } from '../diffusion/schedulers/scheduler.ts';
import { type ParityCheck, type ParityResult, compare, failure, scaledTolerance } from './check.ts';

const COMPONENT = 'scheduler';
/** sd15-tiny README: "scheduler rollouts relative ≤ 1e-5". */
export const SCHEDULER_RELATIVE_TOLERANCE = 1e-5;

const entrySchema = z.looseObject({
  config: z.record(z.string(), z.unknown()),
  init_noise_sigma: z.number().optional(),
  timesteps: z.record(z.string(), z.array(z.number())).optional(),
  sigmas: z.record(z.string(), z.array(z.number())).optional(),
  timesteps_by_spacing: z.record(z.string(), z.record(z.string(), z.array(z.number()))).optional(),
  init_noise_sigma_after_set_timesteps: z.record(z.string(), z.number()).optional(),
});
type Entry = z.infer<typeof entrySchema>;

const fileSchema = z.looseObject({
  schedulers: z.record(z.string(), z.unknown()).optional(),
  alphas_cumprod: z.array(z.number()).optional(),
});

/** The scheduler class an entry key names: `DDIMScheduler`, or `DPMSolverMultistepScheduler_diffusers_0.32.2`. */
function classOfKey(key: string): string | undefined {
  return [...SCHEDULER_CLASSES].sort((a, b) => b.length - a.length).find((name) => key === name || key.startsWith(`${name}_`));
}

function relative(caseName: string, actual: ArrayLike<number>, expected: ArrayLike<number>): ParityResult {
  return compare(COMPONENT, caseName, actual, expected, scaledTolerance(SCHEDULER_RELATIVE_TOLERANCE, expected));
}

function* tableChecks(path: string): Iterable<ParityResult> {
  const file = fileSchema.parse(parsePythonJson(readFileSync(path, 'utf8')));
  const entries: Array<[string, unknown]> = [
    ...Object.entries(file.schedulers ?? {}),
    ...Object.entries(file).filter(([key]) => key !== 'schedulers' && classOfKey(key) !== undefined),
  ];
  for (const [key, raw] of entries) {
    const className = classOfKey(key);
    const entry = entrySchema.safeParse(raw);
    if (!className || !entry.success) {
      yield failure(COMPONENT, key, 0, new Error(`entry "${key}" is not a known scheduler with a config`));
      continue;
    }
    yield* entryChecks(key, className, entry.data, file.alphas_cumprod);
  }
}

function* entryChecks(key: string, className: string, entry: Entry, alphas: number[] | undefined): Iterable<ParityResult> {
  const build = (overrides: Record<string, unknown> = {}): Scheduler =>
    createScheduler(className, { ...entry.config, ...overrides });
  const guarded = function* (caseName: string, run: () => ParityResult): Iterable<ParityResult> {
    try {
      yield run();
    } catch (error) {
      yield failure(COMPONENT, caseName, 0, error);
    }
  };
  if (alphas) {
    yield* guarded(`${key}.alphas_cumprod`, () => relative(`${key}.alphas_cumprod`, build().alphasCumprod, alphas));
  }
  for (const [steps, expected] of Object.entries(entry.timesteps ?? {})) {
    yield* guarded(`${key}.timesteps.${steps}`, () => {
      const scheduler = build();
      scheduler.setTimesteps(Number(steps));
      return relative(`${key}.timesteps.${steps}`, scheduler.timesteps, expected);
    });
  }
  for (const [steps, expected] of Object.entries(entry.sigmas ?? {})) {
    yield* guarded(`${key}.sigmas.${steps}`, () => {
      const scheduler = build();
      scheduler.setTimesteps(Number(steps));
      if (!scheduler.sigmas) throw new Error(`${className} has no sigma schedule`);
      return relative(`${key}.sigmas.${steps}`, scheduler.sigmas, expected);
    });
  }
  for (const [spacing, bySteps] of Object.entries(entry.timesteps_by_spacing ?? {})) {
    for (const [steps, expected] of Object.entries(bySteps)) {
      const caseName = `${key}.timesteps_by_spacing.${spacing}.${steps}`;
      yield* guarded(caseName, () => {
        const scheduler = build({ timestep_spacing: spacing });
        scheduler.setTimesteps(Number(steps));
        return relative(caseName, scheduler.timesteps, expected);
      });
    }
  }
  const afterSet = entry.init_noise_sigma_after_set_timesteps ?? {};
  for (const [steps, expected] of Object.entries(afterSet)) {
    const caseName = `${key}.init_noise_sigma.${steps}`;
    yield* guarded(caseName, () => {
      const scheduler = build();
      scheduler.setTimesteps(Number(steps));
      return relative(caseName, [scheduler.initNoiseSigma], [expected]);
    });
  }
  if (entry.init_noise_sigma !== undefined && Object.keys(afterSet).length === 0) {
    const expected = entry.init_noise_sigma;
    yield* guarded(`${key}.init_noise_sigma`, () => {
      const scheduler = build();
      // Sigma-based schedulers only know their initial sigma once a grid is set; the table's value is for that.
      const steps = Number(Object.keys(entry.timesteps ?? {})[0] ?? 50);
      scheduler.setTimesteps(steps);
      return relative(`${key}.init_noise_sigma`, [scheduler.initNoiseSigma], [expected]);
    });
  }
}

const rolloutMetadataSchema = z.looseObject({
  scheduler: z.string().optional(),
  num_inference_steps: z.string().optional(),
  config: z.string().optional(),
});

/** Replays one rollout file and compares every tensor it holds. */
function rolloutChecks(path: string): ParityResult[] {
  const name = basename(path, '.safetensors');
  const file = SafetensorsFile.open(path);
  try {
    const metadata = rolloutMetadataSchema.parse(file.metadata);
    const className = metadata.scheduler ?? classOfKey(name.replace(/^rollout_/, ''));
    const steps = Number(metadata.num_inference_steps ?? /_(\d+)steps/.exec(name)?.[1]);
    if (!className || !Number.isInteger(steps)) {
      throw new Error('cannot tell the scheduler class and step count (metadata "scheduler"/"num_inference_steps")');
    }
    const config = metadata.config ? parsePythonJson(metadata.config) : {};
    const scheduler = createScheduler(className, config);
    scheduler.setTimesteps(steps);
    const results: ParityResult[] = [];
    const tensor = (tensorName: string) => toFloat32(file.read(tensorName));

    if (file.has('timesteps')) {
      results.push(relative(`${name}.timesteps`, scheduler.timesteps, toFloat64(file.read('timesteps'))));
    }
    const modelOutputs = file.read('model_outputs');
    const iterations = modelOutputs.shape[0] ?? 0;
    if (iterations !== scheduler.timesteps.length) {
      throw new Error(`model_outputs holds ${iterations} iterations but the schedule has ${scheduler.timesteps.length}`);
    }
    const outputs = toFloat32(modelOutputs);
    const latentSize = outputs.length / iterations;
    const noise = tensor('initial_noise');
    const sigma = scheduler.initNoiseSigma;
    let latents: Float32Array = noise.map((x) => x * sigma);
    if (file.has('initial_latents')) results.push(relative(`${name}.initial_latents`, latents, tensor('initial_latents')));

    // Per-step tensors are compared in groups (all steps of a kind together), tolerance scaled by the group's size.
    const groups = new Map<string, { actual: number[]; expected: number[] }>();
    const record = (kind: string, actual: Float32Array, expectedName: string) => {
      if (!file.has(expectedName)) return;
      const group = groups.get(kind) ?? { actual: [], expected: [] };
      group.actual.push(...actual);
      group.expected.push(...tensor(expectedName));
      groups.set(kind, group);
    };
    scheduler.timesteps.forEach((t, i) => {
      const prefix = `step${String(i).padStart(2, '0')}`;
      const modelInput = scheduler.scaleModelInput(latents, t);
      record('model_input', modelInput, `${prefix}.model_input`);
      const output = outputs.subarray(i * latentSize, (i + 1) * latentSize);
      // Stochastic schedulers replay the noise the reference drew, when the file records it (stepNN.noise).
      const noiseName = `${prefix}.noise`;
      const generator = file.has(noiseName) ? { normal: () => tensor(noiseName) } : undefined;
      const result = scheduler.step(output, t, latents, generator ? { generator } : {});
      if (result.predOriginalSample) record('pred_original_sample', result.predOriginalSample, `${prefix}.pred_original_sample`);
      record('prev_sample', result.prevSample, `${prefix}.prev_sample`);
      latents = result.prevSample;
    });
    for (const [kind, group] of groups) results.push(relative(`${name}.steps.${kind}`, group.actual, group.expected));
    if (file.has('final_latents')) results.push(relative(`${name}.final_latents`, latents, tensor('final_latents')));
    return results;
  } catch (error) {
    return [failure(COMPONENT, name, 0, error)];
  } finally {
    file.close();
  }
}

export const schedulerParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (fixtureDir) => existsSync(join(fixtureDir, 'schedulers')),
  *run(fixtureDir) {
    const dir = join(fixtureDir, 'schedulers');
    const table = join(dir, 'schedulers.json');
    if (existsSync(table)) yield* tableChecks(table);
    const rollouts = readdirSync(dir)
      .filter((file) => file.startsWith('rollout_') && file.endsWith('.safetensors'))
      .sort();
    for (const file of rollouts) yield* rolloutChecks(join(dir, file));
  },
};

