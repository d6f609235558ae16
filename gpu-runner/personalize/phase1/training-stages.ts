// The training a hypernetwork checkpoint went through, stage by stage, kept in its safetensors metadata. A phase-1 run
// that continues from a trained checkpoint (the pack's own, or `--init`) appends its stage to the ones it started
// from, so the model card can name the whole recipe (gpu-runner/personalize/phase1/README.md) and not only the last run.
import { z } from 'zod';

/** One phase-1 run: what `npm run phase1 -- train` was given. */
export const TrainingStageSchema = z.object({
  steps: z.number().int().positive(),
  /** The peak learning rate; null when the run used the trainer's default. */
  lr: z.number().positive().nullable(),
  schedule: z.enum(['constant', 'cosine']).nullable(),
  beta: z.number().nonnegative(),
  gamma: z.number().nonnegative(),
  teacherWeight: z.number().nonnegative(),
});
export type TrainingStage = z.infer<typeof TrainingStageSchema>;

/** The metadata key holding the stages as a JSON array, oldest first. */
export const TRAINING_STAGES_KEY = 'training_stages';

const numberOr = (value: string | undefined, fallback: number) => (value === undefined || value.trim() === '' || !Number.isFinite(Number(value)) ? fallback : Number(value));

/**
 * The stages recorded in a checkpoint's metadata, oldest first. A checkpoint written before stages were recorded
 * counts as one stage read from its flat keys (steps, beta, gamma, teacher_weight; rate and schedule unknown); a file
 * that records no training (an untrained head, a pretrained encoder alone) has none.
 */
export function trainingStages(metadata: Readonly<Record<string, string>>): TrainingStage[] {
  const recorded = metadata[TRAINING_STAGES_KEY];
  if (recorded !== undefined) {
    const parsed = z.array(TrainingStageSchema).safeParse(JSON.parse(recorded));
    if (!parsed.success) throw new Error(`hypernetwork metadata "${TRAINING_STAGES_KEY}" is malformed: ${parsed.error.issues[0]?.message ?? 'not a list of stages'}`);
    return parsed.data;
  }
  const steps = numberOr(metadata.steps, 0);
  if (metadata.trained === 'false' || !Number.isInteger(steps) || steps <= 0) return [];
  return [{ steps, lr: null, schedule: null, beta: numberOr(metadata.beta, 0), gamma: numberOr(metadata.gamma, 0), teacherWeight: numberOr(metadata.teacher_weight, 0) }];
}

/** The metadata value for a run that adds `stage` to the stages its starting checkpoint went through. */
export function appendTrainingStage(previous: readonly TrainingStage[], stage: TrainingStage): string {
  return JSON.stringify([...previous, TrainingStageSchema.parse(stage)]);
}

/** One stage in words, for the model card: "3500 steps at lr 2e-3 (cosine), teacher weight 1, attribute probe γ = 0.1". */
export function describeTrainingStage(stage: TrainingStage): string {
  const rate = stage.lr === null ? '' : ` at lr ${stage.lr}${stage.schedule ? ` (${stage.schedule})` : ''}`;
  const beta = stage.beta > 0 ? `, β = ${stage.beta} toward pre-optimized weights` : '';
  return `${stage.steps} steps${rate}, teacher weight ${stage.teacherWeight}, attribute probe γ = ${stage.gamma}${beta}`;
}
