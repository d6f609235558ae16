import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ephemeralRangeStart, freePort, LOWEST_FREE_PORT } from './ports.ts';

function listen(port: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(() => new Promise((done) => server.close(() => done()))));
  });
}

describe('freePort', () => {
  it('hands out ports below the ephemeral range, where outgoing connections never take them, that a server can bind', async () => {
    const start = ephemeralRangeStart();
    for (let i = 0; i < 20; i += 1) {
      const port = await freePort();
      if (start - LOWEST_FREE_PORT >= 1_000) {
        expect(port).toBeGreaterThanOrEqual(LOWEST_FREE_PORT);
        expect(port).toBeLessThan(start);
      }
      const close = await listen(port);
      await close();
    }
  });

  it('falls back to a kernel port where the gap below the range is too narrow', async () => {
    const port = await freePort(LOWEST_FREE_PORT + 10);
    expect(port).toBeGreaterThan(0);
    const close = await listen(port);
    await close();
  });

  it('reads the range start from the kernel file, and a default where it is missing or malformed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hdb-ports-'));
    const good = join(dir, 'range');
    writeFileSync(good, '32768\t60999\n');
    expect(ephemeralRangeStart(good)).toBe(32768);
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'nonsense');
    expect(ephemeralRangeStart(bad)).toBe(49_152);
    expect(ephemeralRangeStart(join(dir, 'missing'))).toBe(49_152);
  });
});
