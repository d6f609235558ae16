import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('bootstrap', () => {
  it('is a no-op when node_modules is newer than the lockfile', () => {
    const out = execFileSync(process.execPath, ['scripts/bootstrap.mjs'], { encoding: 'utf8' });
    expect(out).not.toContain('npm ci');
  });
});
