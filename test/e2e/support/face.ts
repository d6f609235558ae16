// A face photo for uploads: a PNG rendered by the synthetic world (docs/world.md), the same every run.
import { DEFAULT_WORLD, encodePng, sampleAt } from '../../../gpu-runner/world/index.ts';

/** Uploads need 64 px a side at least (edge image limits); 128 px keeps the face legible. */
const FACE_SIZE = 128;

export async function facePng(index = 0): Promise<Uint8Array> {
  const sample = sampleAt({ ...DEFAULT_WORLD, size: FACE_SIZE }, 'test', index);
  return new Uint8Array(await encodePng(sample.image));
}
