// Runs every registered parity check that applies to a fixture folder and prints one JSON line per case.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ParityCheck, ParityResult } from './check.ts';
import { failure } from './check.ts';
import { PARITY_CHECKS } from './checks.ts';

/** Runs the checks that apply to `fixtureDir`, handing each result to `onResult` as soon as it is known. */
export async function runParity(
  fixtureDir: string,
  onResult: (result: ParityResult) => void,
  checks: readonly ParityCheck[] = PARITY_CHECKS,
): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  const applicable = checks.filter((check) => check.appliesTo(fixtureDir));
  for (const check of applicable) {
    try {
      for await (const result of check.run(fixtureDir)) {
        results.push(result);
        onResult(result);
      }
    } catch (error) {
      const result = failure(check.component, '<check>', 0, error);
      results.push(result);
      onResult(result);
    }
  }
  return results;
}

/** The `parity` command: exit status 0 when every case passed, 1 when any failed or nothing applied. */
export async function runParityCli(fixtureDir: string): Promise<number> {
  const dir = resolve(fixtureDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    process.stderr.write(`parity: ${dir} is not a folder\n`);
    return 1;
  }
  const results = await runParity(dir, (result) => process.stdout.write(`${JSON.stringify(result)}\n`));
  if (results.length === 0) {
    process.stderr.write(`parity: no check applies to ${dir} (expected sub-folders such as schedulers/, unet/, vae/)\n`);
    return 1;
  }
  const failed = results.filter((result) => !result.ok).length;
  process.stderr.write(`parity: ${results.length - failed}/${results.length} checks passed\n`);
  return failed === 0 ? 0 : 1;
}
