import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const SECRET = 'a-runner-secret-of-enough-length-0123456789';

describe('runner configuration', () => {
  it('passes RUNNER_MODEL_VARIANT through, unset (or empty) meaning detection', () => {
    expect(loadConfig({ RUNNER_SECRET: SECRET, RUNNER_MODEL_VARIANT: 'fp16' }).modelVariant).toBe('fp16');
    expect(loadConfig({ RUNNER_SECRET: SECRET }).modelVariant).toBeUndefined();
    expect(loadConfig({ RUNNER_SECRET: SECRET, RUNNER_MODEL_VARIANT: '' }).modelVariant).toBeUndefined();
  });

  it('refuses a variant that is not a plain name (it becomes part of a file name)', () => {
    expect(() => loadConfig({ RUNNER_SECRET: SECRET, RUNNER_MODEL_VARIANT: '../fp16' })).toThrow(ConfigError);
    expect(() => loadConfig({ RUNNER_SECRET: SECRET, RUNNER_MODEL_VARIANT: '../fp16' })).toThrow(/RUNNER_MODEL_VARIANT is a name like fp16/);
  });
});
