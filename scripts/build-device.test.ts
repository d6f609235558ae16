// The served pack folder is cached as immutable (edge/client/_headers), so its name must follow every file in it.
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HYPERNETWORK_CHECKPOINT, packDigest } from '../gpu-runner/pack/model-pack.ts';
import { WORLD_PACK_DIR, WORLD_PACK_ID } from '../gpu-runner/pack/world-pack.ts';
import { servedPackFolder } from './build-device.ts';

const scratch = mkdtempSync(join(tmpdir(), 'served-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the served pack folder', () => {
  it('is renamed when only the hypernetwork changes, which the pack digest leaves out', async () => {
    const copy = join(scratch, 'pack');
    cpSync(WORLD_PACK_DIR, copy, { recursive: true });
    const before = { folder: await servedPackFolder(copy), digest: await packDigest(copy) };
    expect(before.folder).toMatch(new RegExp(`^${WORLD_PACK_ID}-[0-9a-f]{12}$`));
    expect(await servedPackFolder(copy)).toBe(before.folder);

    const file = join(copy, HYPERNETWORK_CHECKPOINT);
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1); // one bit of the last parameter
    writeFileSync(file, bytes);
    expect(await packDigest(copy)).toBe(before.digest);
    expect(await servedPackFolder(copy)).not.toBe(before.folder);
  });
});
