// onnxruntime resolves external data inside the model's folder only, and follows symlinks before checking (a symlink
// to a checkpoint elsewhere is refused: "External data path escapes model directory"). So a model saved outside the
// checkpoint's folder gets a hard link to the weights (no copy), or a copy across file systems.
import { copyFileSync, existsSync, linkSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Makes `file` available as `<dir>/<name>` and returns that path; an existing hard link to it is reused. */
export function stageWeightsFile(file: string, dir: string, name = basename(file)): string {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, name);
  if (existsSync(target)) {
    const [source, staged] = [statSync(file), statSync(target)];
    if (source.ino === staged.ino && source.dev === staged.dev) return target;
    rmSync(target);
  }
  try {
    linkSync(file, target);
  } catch {
    copyFileSync(file, target);
  }
  return target;
}
