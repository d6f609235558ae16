// Which model pack the product uses when none is named (the runner without RUNNER_MODEL_DIR, `npm start`, bench:world,
// phase 1): the trained world pack once every part of it is committed (world-pack.ts), the random tiny pack (written
// on first use) until then.
import { isCompletePack, WORLD_PACK_DIR } from './world-pack.ts';
import { ensureTinyPack } from './write-tiny-pack.ts';

export function defaultModelDir(worldPackDir: string = WORLD_PACK_DIR): string {
  return isCompletePack(worldPackDir) ? worldPackDir : ensureTinyPack();
}
