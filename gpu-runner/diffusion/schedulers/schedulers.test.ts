import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, toFloat32 } from '../../io/safetensors.ts';
import { parsePythonJson } from '../../io/python-json.ts';
import { referenceDir, referencePath } from '../../../test/fixtures/reference-dir.ts';
import { schedulerParity } from '../../parity/schedulers.ts';
import type { ParityResult } from '../../parity/check.ts';
import { DpmSolverMultistepScheduler } from './dpm-solver-multistep.ts';
import { EulerAncestralScheduler } from './euler-ancestral.ts';
import { EulerScheduler } from './euler.ts';
import { SCHEDULER_CLASSES, createScheduler, loadScheduler } from './index.ts';
import { roundHalfEven, torchLinspaceFloat32 } from './noise-schedule.ts';
import type { GaussianSource } from './scheduler.ts';
import { SD15_SCHEDULER_CONFIG } from './sd15-config.ts';

/** A deterministic stand-in for the sampler's PRNG: a fixed sequence, so expected values are computable by hand. */
function constantNoise(value: number): GaussianSource {
  return { normal: (count) => new Float32Array(count).fill(value) };
}

describe('parity with diffusers (sd15-tiny/schedulers)', () => {
  const results: ParityResult[] = [...(schedulerParity.run(referenceDir() + '/sd15-tiny') as Iterable<ParityResult>)];

  it('covers the table and a rollout for every fixture class', () => {
    const rolloutClasses = new Set(results.filter((r) => r.case.startsWith('rollout_')).map((r) => /^rollout_([A-Za-z]+)/.exec(r.case)![1]));
    expect([...rolloutClasses].sort()).toEqual(['DDIMScheduler', 'DPMSolverMultistepScheduler', 'EulerDiscreteScheduler', 'PNDMScheduler']);
    expect(results.some((r) => r.case.includes('diffusers0.32.2.final_latents'))).toBe(true);
    expect(results.filter((r) => r.case.includes('timesteps_by_spacing')).length).toBeGreaterThanOrEqual(24);
  });

  it('matches every timestep grid, sigma, alphas_cumprod and rollout tensor within relative 1e-5', () => {
    const failed = results.filter((r) => !r.ok);
    expect(failed).toEqual([]);
  });

  it('tells diffusers 0.24 from 0.32 on the DPM-Solver++ final step', () => {
    const file = SafetensorsFile.open(
      referencePath('sd15-tiny', 'schedulers', 'rollout_DPMSolverMultistepScheduler_5steps.diffusers0.32.2.safetensors'),
    );
    const config = parsePythonJson(file.metadata.config!) as Record<string, unknown>;
    const run = (scheduler: DpmSolverMultistepScheduler) => {
      scheduler.setTimesteps(5);
      const outputs = toFloat32(file.read('model_outputs'));
      let latents = toFloat32(file.read('initial_latents'));
      const size = latents.length;
      scheduler.timesteps.forEach((t, i) => {
        latents = scheduler.step(outputs.subarray(i * size, (i + 1) * size), t, latents).prevSample;
      });
      return latents;
    };
    const { final_sigmas_type: _dropped, ...legacyConfig } = config;
    const expected = toFloat32(file.read('final_latents'));
    const newer = run(new DpmSolverMultistepScheduler(legacyConfig, { behaviour: 'diffusers-0.32' }));
    const older = run(new DpmSolverMultistepScheduler(legacyConfig, { behaviour: 'diffusers-0.24' }));
    const maxDiff = (a: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - expected[i]!)));
    expect(maxDiff(newer)).toBeLessThan(1e-4);
    expect(maxDiff(older)).toBeGreaterThan(1e-2);
    file.close();
  });
});

describe('noise schedule arithmetic', () => {
  it('reproduces torch.linspace float32 (counts down from the end in the second half)', () => {
    const values = torchLinspaceFloat32(0, 1, 5);
    expect(Array.from(values)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it('rounds half to even like numpy', () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 0, 2, 3]);
  });
});

describe('scheduler configs', () => {
  it('builds every class from SD 1.5 scheduler_config.json, each with its own default spacing', () => {
    const first = Object.fromEntries(
      SCHEDULER_CLASSES.map((name) => {
        const scheduler = createScheduler(name, SD15_SCHEDULER_CONFIG);
        scheduler.setTimesteps(10);
        return [name, scheduler.timesteps[0]];
      }),
    );
    // leading (DDIM, PNDM) starts at 901 = 9·100 + steps_offset; linspace (Euler, DPM++) at 999.
    expect(first).toEqual({
      DDIMScheduler: 901,
      PNDMScheduler: 901,
      EulerDiscreteScheduler: 999,
      EulerAncestralDiscreteScheduler: 999,
      DPMSolverMultistepScheduler: 999,
    });
  });

  it('refuses unknown classes, unsupported options and ill-typed keys with a clear message', () => {
    expect(() => createScheduler('LMSDiscreteScheduler', {})).toThrow(/unknown scheduler class "LMSDiscreteScheduler"/);
    expect(() => createScheduler('DDIMScheduler', { thresholding: true })).toThrow(/thresholding/);
    expect(() => createScheduler('EulerDiscreteScheduler', { beta_schedule: 'cubic' })).toThrow(
      /EulerDiscreteScheduler config:[\s\S]*beta_schedule/,
    );
    const scheduler = createScheduler('DDIMScheduler', SD15_SCHEDULER_CONFIG);
    expect(() => scheduler.setTimesteps(0)).toThrow(/num_inference_steps must be an integer in \[1, 1000\]/);
    expect(() => scheduler.step(new Float32Array(4), 1, new Float32Array(4))).toThrow(/call setTimesteps before step/);
  });

  it('loads a scheduler_config.json file and can swap the class', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scheduler-config-'));
    try {
      const path = join(dir, 'scheduler_config.json');
      writeFileSync(path, JSON.stringify(SD15_SCHEDULER_CONFIG));
      expect(loadScheduler(path).className).toBe('PNDMScheduler');
      expect(loadScheduler(path, 'EulerDiscreteScheduler').className).toBe('EulerDiscreteScheduler');
      expect(() => loadScheduler(referencePath('sd15-tiny', 'schedulers', 'schedulers.json'))).toThrow(/needs a "_class_name"/);
      writeFileSync(path, '{');
      expect(() => loadScheduler(path)).toThrow(/cannot read scheduler config/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Karras sigmas (EDM eq. 5, rho = 7)', () => {
  for (const className of ['EulerDiscreteScheduler', 'DPMSolverMultistepScheduler']) {
    it(`${className}: start at sigma_max, end at sigma_min, decrease, and map to training timesteps`, () => {
      const scheduler = createScheduler(className, { ...SD15_SCHEDULER_CONFIG, use_karras_sigmas: true });
      scheduler.setTimesteps(20);
      const sigmas = scheduler.sigmas!;
      const plain = createScheduler(className, SD15_SCHEDULER_CONFIG);
      plain.setTimesteps(20);
      expect(sigmas[0]).toBeCloseTo(plain.sigmas![0]!, 4);
      for (let i = 1; i < 20; i++) expect(sigmas[i]!).toBeLessThan(sigmas[i - 1]!);
      expect(scheduler.timesteps).toHaveLength(20);
      expect(scheduler.timesteps[0]).toBeCloseTo(999, 0);
      // Karras spacing concentrates steps at low noise: the last gap is far smaller than with the linear grid.
      expect(sigmas[18]! - sigmas[19]!).toBeLessThan(plain.sigmas![18]! - plain.sigmas![19]!);
    });
  }
});

describe('PNDM with the Runge–Kutta warm-up (skip_prk_steps false)', () => {
  it('runs 12 pseudo-RK evaluations over half steps, then PLMS from the fourth timestep down', () => {
    const scheduler = createScheduler('PNDMScheduler', { ...SD15_SCHEDULER_CONFIG, skip_prk_steps: false });
    scheduler.setTimesteps(10);
    expect(scheduler.timesteps).toEqual([
      901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1,
    ]);
    // Every evaluation of an RK step moves from the step's start sample: the sample passed in does not matter.
    const run = (midSample: Float32Array) => {
      scheduler.setTimesteps(10);
      const eps = new Float32Array([0.2, 0.1]);
      const first = scheduler.step(eps, 901, new Float32Array([0.5, -1])).prevSample;
      const second = scheduler.step(eps, 851, midSample.length ? midSample : first).prevSample;
      return [first, second, scheduler.step(eps, 851, second).prevSample, scheduler.step(eps, 801, second).prevSample];
    };
    const [a, b] = [run(new Float32Array(0)), run(new Float32Array([100, 100]))];
    expect(a.map((x) => Array.from(x))).toEqual(b.map((x) => Array.from(x)));
    expect(a[3]!.every(Number.isFinite)).toBe(true);
  });
});

describe('DPM-Solver++ orders', () => {
  it('third order (3M) starts like 2M and then departs from it', () => {
    const run = (order: number) => {
      const scheduler = createScheduler('DPMSolverMultistepScheduler', { ...SD15_SCHEDULER_CONFIG, solver_order: order });
      scheduler.setTimesteps(20);
      let latents: Float32Array = new Float32Array([1.5, -0.5, 0.25]);
      const trajectory: number[] = [];
      scheduler.timesteps.forEach((t, i) => {
        const eps = new Float32Array([Math.sin(i), Math.cos(i), 0.1 * i]);
        latents = scheduler.step(eps, t, latents).prevSample;
        trajectory.push(latents[0]!);
      });
      return trajectory;
    };
    const [second, third] = [run(2), run(3)];
    expect(third.slice(0, 2)).toEqual(second.slice(0, 2));
    expect(Math.abs(third[5]! - second[5]!)).toBeGreaterThan(1e-6);
    expect(third.every(Number.isFinite)).toBe(true);
  });
});

describe('stochastic samplers', () => {
  it('Euler ancestral: sigma_up² + sigma_down² = sigma_next², noise enters scaled by sigma_up', () => {
    const scheduler = new EulerAncestralScheduler(SD15_SCHEDULER_CONFIG);
    scheduler.setTimesteps(10);
    const [sigma, next] = [scheduler.sigmas[0]!, scheduler.sigmas[1]!];
    const sigmaUp = Math.sqrt((next ** 2 * (sigma ** 2 - next ** 2)) / sigma ** 2);
    const sigmaDown = Math.sqrt(next ** 2 - sigmaUp ** 2);
    const sample = new Float32Array([1, -2, 3, 0.5]);
    const eps = new Float32Array([0.1, 0.2, -0.3, 0]);
    const t = scheduler.timesteps[0]!;
    const withNoise = scheduler.step(eps, t, sample, { generator: constantNoise(1) }).prevSample;
    scheduler.setTimesteps(10);
    const noiseless = scheduler.step(eps, t, sample, { generator: constantNoise(0) }).prevSample;
    for (let i = 0; i < 4; i++) {
      expect(noiseless[i]).toBeCloseTo(sample[i]! + eps[i]! * (sigmaDown - sigma), 4);
      expect(withNoise[i]! - noiseless[i]!).toBeCloseTo(sigmaUp, 4);
    }
    expect(() => scheduler.step(eps, scheduler.timesteps[1]!, sample)).toThrow(/needs a noise generator/);
  });

  it('Euler ancestral ends exactly at x0 (final sigma 0, no noise added)', () => {
    const scheduler = new EulerAncestralScheduler(SD15_SCHEDULER_CONFIG);
    scheduler.setTimesteps(3);
    let latents: Float32Array = new Float32Array([2, -1]);
    const eps = new Float32Array([0.5, 0.25]);
    let x0: Float32Array = latents;
    for (const t of scheduler.timesteps) {
      const result = scheduler.step(eps, t, latents, { generator: constantNoise(1) });
      latents = result.prevSample;
      x0 = result.predOriginalSample!;
    }
    expect(Array.from(latents)).toEqual(Array.from(x0));
  });

  it('DDIM with eta = 1 adds the DDPM posterior noise', () => {
    const deterministic = createScheduler('DDIMScheduler', SD15_SCHEDULER_CONFIG);
    const stochastic = createScheduler('DDIMScheduler', SD15_SCHEDULER_CONFIG, { eta: 1 });
    for (const s of [deterministic, stochastic]) s.setTimesteps(10);
    const sample = new Float32Array([0.3, -0.7]);
    const eps = new Float32Array([0.1, 0.4]);
    const a = deterministic.step(eps, 901, sample).prevSample;
    const b = stochastic.step(eps, 901, sample, { generator: constantNoise(0) }).prevSample;
    expect(Math.abs(a[0]! - b[0]!)).toBeGreaterThan(1e-4);
    expect(() => stochastic.step(eps, 901, sample)).toThrow(/eta > 0 needs a noise generator/);
  });
});

describe('addNoise (training forward process)', () => {
  it('DDIM/PNDM: √ᾱ_t·x0 + √(1−ᾱ_t)·ε per batch row', () => {
    const scheduler = createScheduler('PNDMScheduler', SD15_SCHEDULER_CONFIG);
    const x0 = new Float32Array([1, 1, 2, 2]);
    const noise = new Float32Array([1, -1, 1, -1]);
    const out = scheduler.addNoise(x0, noise, [0, 999]);
    const [a0, a999] = [scheduler.alphasCumprod[0]!, scheduler.alphasCumprod[999]!];
    expect(out[0]).toBeCloseTo(Math.sqrt(a0) + Math.sqrt(1 - a0), 6);
    expect(out[3]).toBeCloseTo(2 * Math.sqrt(a999) - Math.sqrt(1 - a999), 6);
    expect(() => scheduler.addNoise(x0, noise, [0, 0, 0])).toThrow(/do not split into 3 batch rows/);
    expect(() => scheduler.addNoise(x0, noise, [1000, 0])).toThrow(/timestep 1000 is outside the schedule/);
  });

  it('Euler: x0 + σ·ε at a timestep of the current grid', () => {
    const scheduler = new EulerScheduler(SD15_SCHEDULER_CONFIG);
    scheduler.setTimesteps(4);
    const t = scheduler.timesteps[1]!;
    const out = scheduler.addNoise(new Float32Array([1]), new Float32Array([2]), [t]);
    expect(out[0]).toBeCloseTo(1 + 2 * scheduler.sigmas[1]!, 5);
  });
});
