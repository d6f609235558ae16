import { describe, expect, it } from 'vitest';
import { DEFAULT_FINETUNE_STEPS as CONTRACT_DEFAULT_STEPS, FinetuneOptions } from '../../../contract/index.ts';
import { DEFAULT_FINETUNE_STEPS } from './fast-finetune.ts';

describe('the fast finetune default', () => {
  it('is the same at the edge (a job that names no steps) and in the library', () => {
    expect(CONTRACT_DEFAULT_STEPS).toBe(DEFAULT_FINETUNE_STEPS);
    expect(FinetuneOptions.parse({}).steps).toBe(DEFAULT_FINETUNE_STEPS);
  });
});
