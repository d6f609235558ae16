// Settings of the world benchmark (docs/world.md, "Benchmark"): what is run, how long each method optimizes, and how
// the images are sampled. Validated with zod at the boundary (the CLI's flags), so a typo fails before minutes of work.
import { z } from 'zod';
import { DEFAULT_FINETUNE_STEPS, DEFAULT_FINETUNE_TIMESTEPS, DEFAULT_RELAX_RANK } from '../../personalize/finetune/fast-finetune.ts';
import { DEFAULT_FROM_ZERO_STEPS, DEFAULT_LEARNING_RATES as LIBRARY_LEARNING_RATES } from '../../personalize/api.ts';
import { DEFAULT_CLASS_PROMPTS, MAX_CLASS_SAMPLES } from '../../personalize/finetune/prior.ts';
import { timestepScheduleSchema } from '../../personalize/finetune/timesteps.ts';
import { PERSONALIZATION_METHODS } from '../../personalize/weights/personalized-weights.ts';

export const BENCHMARK_METHODS = PERSONALIZATION_METHODS;
export type BenchmarkMethod = (typeof BENCHMARK_METHODS)[number];

/** The library's per-method learning rates (what a runner job without `learning_rate` gets). */
export const DEFAULT_LEARNING_RATES: Readonly<Record<BenchmarkMethod, number>> = LIBRARY_LEARNING_RATES;

/**
 * HyperDreamBooth §4 (docs/method.md, "The paper's numbers"): DreamBooth's 1200 steps, against which the paper
 * reports 25× less time.
 */
export const PAPER_DREAMBOOTH_STEPS = 1200;

const positiveInt = z.number().int().positive();
const stepsSchema = z.object({
  hyperdreambooth: positiveInt,
  'lidb-zero': positiveInt,
  'dreambooth-lora': positiveInt,
  'textual-inversion': positiveInt,
});

export const worldBenchmarkSettingsSchema = z.object({
  /** Test-split identities (never seen in training), the first `identities` of the split. */
  identities: positiveInt,
  /**
   * Whose faces: `test` (never trained on: the reported numbers) or `validation` (held out from training too, for
   * choosing settings such as finetune steps without looking at the test faces).
   */
  split: z.enum(['test', 'validation']).default('test'),
  /** Prompts per identity, the first `prompts` of the benchmark's prompt list (same for every method). */
  prompts: positiveInt,
  imagesPerPrompt: positiveInt,
  samplerSteps: positiveInt,
  guidanceScale: z.number().positive(),
  scheduler: z.enum(['ddim', 'euler', 'euler-ancestral', 'dpmpp-2m', 'dpmpp-2m-karras', 'pndm']),
  /** One seed for everything random (finetune draws, sampler latents, reference nuisance): runs are reproducible. */
  seed: z.number().int().nonnegative(),
  methods: z.array(z.enum(BENCHMARK_METHODS)).min(1),
  steps: stepsSchema,
  learningRates: z.object(Object.fromEntries(BENCHMARK_METHODS.map((m) => [m, z.number().nonnegative()])) as Record<BenchmarkMethod, z.ZodNumber>),
  relax: z.object({ mode: z.enum(['lora', 'lidb']), rank: positiveInt }),
  /** The HyperDreamBooth finetune's timesteps (personalize/finetune/timesteps.ts); the baselines keep uniform draws. */
  finetuneTimesteps: timestepScheduleSchema,
  /** Also score the base model without personalization and the world's own renders (chance and ceiling rows). */
  referenceRows: z.boolean(),
  /**
   * Before timing a method, run it once (one step) on a validation identity: graph building and the first session of
   * each optimizer graph are then paid outside the measurement, as on a runner that has served a job before.
   */
  warmup: z.boolean(),
  /**
   * Prior preservation for the optimizing methods (DreamBooth's λ; 0: off): each step also fits one of the base
   * model's class images ("a photo of a face, on a blue background, wearing a hat", …), drawn once before the runs.
   */
  priorWeight: z.number().min(0).max(10),
  /** How many class samples (one image per prompt of `DEFAULT_CLASS_PROMPTS`, cycled): the steps take them in turn. */
  priorImages: z.number().int().min(1).max(MAX_CLASS_SAMPLES),
  /** onnxruntime intra-op threads for generation sessions; its default when absent. */
  threads: positiveInt.optional(),
});
export type WorldBenchmarkSettings = z.infer<typeof worldBenchmarkSettingsSchema>;

/** The order: the method, then hypernetwork only, finetune only (LiDB from zero), DreamBooth-LoRA, TI. */
export const TABLE_ORDER: readonly BenchmarkMethod[] = ['hyperdreambooth', 'hyper-only', 'lidb-zero', 'dreambooth-lora', 'textual-inversion'];

/**
 * The full benchmark: more identities, prompts and images; DreamBooth-LoRA at the paper's DreamBooth step count (1200,
 * its Table 3 time comparison), the other from-zero baselines at the library's default (400).
 */
export const FULL_SETTINGS: WorldBenchmarkSettings = {
  identities: 8,
  split: 'test',
  prompts: 6,
  imagesPerPrompt: 2,
  samplerSteps: 25,
  guidanceScale: 4,
  scheduler: 'ddim',
  seed: 1,
  methods: [...TABLE_ORDER],
  steps: { hyperdreambooth: DEFAULT_FINETUNE_STEPS, 'lidb-zero': DEFAULT_FROM_ZERO_STEPS, 'dreambooth-lora': PAPER_DREAMBOOTH_STEPS, 'textual-inversion': DEFAULT_FROM_ZERO_STEPS },
  learningRates: { ...DEFAULT_LEARNING_RATES },
  relax: { mode: 'lora', rank: DEFAULT_RELAX_RANK },
  finetuneTimesteps: DEFAULT_FINETUNE_TIMESTEPS,
  referenceRows: true,
  warmup: true,
  priorWeight: 0,
  priorImages: DEFAULT_CLASS_PROMPTS.length,
};

/** `--quick`: under 10 minutes on the 2-core dev machine (few identities, prompts and sampler steps). */
export const QUICK_SETTINGS: WorldBenchmarkSettings = {
  ...FULL_SETTINGS,
  identities: 2,
  prompts: 3,
  imagesPerPrompt: 1,
  samplerSteps: 10,
  steps: { hyperdreambooth: DEFAULT_FINETUNE_STEPS, 'lidb-zero': 150, 'dreambooth-lora': DEFAULT_FROM_ZERO_STEPS, 'textual-inversion': 150 },
};

export function parseSettings(value: unknown): WorldBenchmarkSettings {
  const parsed = worldBenchmarkSettingsSchema.safeParse(value);
  if (!parsed.success) throw new Error(`invalid world benchmark settings: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
