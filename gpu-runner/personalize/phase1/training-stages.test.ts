import { describe, expect, it } from 'vitest';
import { appendTrainingStage, describeTrainingStage, TRAINING_STAGES_KEY, trainingStages } from './training-stages.ts';

const first = { steps: 3500, lr: 2e-3, schedule: 'cosine' as const, beta: 0, gamma: 0.1, teacherWeight: 1 };
const second = { steps: 3500, lr: 5e-4, schedule: 'cosine' as const, beta: 0, gamma: 0, teacherWeight: 1 };

describe('training stages in a hypernetwork checkpoint', () => {
  it('reads a checkpoint written before stages were recorded as one stage from its flat keys', () => {
    expect(trainingStages({ steps: '3500', beta: '0', gamma: '0.1', teacher_weight: '1', views: '8' })).toEqual([
      { steps: 3500, lr: null, schedule: null, beta: 0, gamma: 0.1, teacherWeight: 1 },
    ]);
  });

  it('finds no stage in an untrained checkpoint or a pretrained encoder alone', () => {
    expect(trainingStages({ trained: 'false', steps: '0' })).toEqual([]);
    expect(trainingStages({ encoder_pretraining: '{"steps":3000}' })).toEqual([]);
  });

  it('appends a continued run to the stages it started from, oldest first', () => {
    const once = appendTrainingStage([], first);
    const twice = appendTrainingStage(trainingStages({ [TRAINING_STAGES_KEY]: once }), second);
    expect(trainingStages({ [TRAINING_STAGES_KEY]: twice, steps: '3500' })).toEqual([first, second]);
  });

  it('refuses malformed stages with the key named', () => {
    expect(() => trainingStages({ [TRAINING_STAGES_KEY]: '[{"steps":-1}]' })).toThrow(/training_stages/);
    expect(() => appendTrainingStage([], { ...first, steps: 0 })).toThrow();
  });

  it('describes a stage in words, leaving out what was not recorded', () => {
    expect(describeTrainingStage(second)).toBe('3500 steps at lr 0.0005 (cosine), teacher weight 1, attribute probe γ = 0');
    expect(describeTrainingStage({ ...first, lr: null, schedule: null, beta: 1 })).toBe('3500 steps, teacher weight 1, attribute probe γ = 0.1, β = 1 toward pre-optimized weights');
  });
});
