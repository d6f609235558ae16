// Shared helpers of the model parity checks (unet, text_encoder, vae, lora): reading a fixture's io.safetensors and
// discovering its cases from the tensor names, never from a fixed list.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, type Tensor, toFloat32 } from '../io/safetensors.ts';
import type { HostTensor } from '../onnx/index.ts';

/** README tolerance for float32 UNet/VAE/CLIP outputs: max-abs ≤ 1e-4 relative to values of order 1. */
export const MODEL_RELATIVE_TOLERANCE = 1e-4;

export class FixtureTensors {
  constructor(
    readonly path: string,
    readonly tensors: Map<string, Tensor>,
  ) {}

  static load(path: string): FixtureTensors {
    return new FixtureTensors(path, loadSafetensors(path).tensors);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): Tensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`${this.path}: no tensor "${name}"`);
    return tensor;
  }

  float32(name: string): Float32Array {
    return toFloat32(this.get(name));
  }

  /** A float32 feed (integer tensors such as int64 timesteps converted by value). */
  feed(name: string): HostTensor {
    const tensor = this.get(name);
    return { dtype: 'float32', dims: [...tensor.shape], data: toFloat32(tensor) };
  }

  /**
   * A per-row float32 vector of `rows` values: diffusers expands a single timestep (shape [] or [1]) to the batch
   * (`timesteps.expand(sample.shape[0])`), so a fixture may store one value for every row.
   */
  feedPerRow(name: string, rows: number): HostTensor {
    const values = this.float32(name);
    if (values.length === rows) return { dtype: 'float32', dims: [rows], data: values };
    if (values.length === 1) return { dtype: 'float32', dims: [rows], data: new Float32Array(rows).fill(values[0]!) };
    throw new Error(`${this.path}: "${name}" has ${values.length} values for a batch of ${rows}`);
  }

  shape(name: string): number[] {
    return [...this.get(name).shape];
  }

  /** Prefixes P (including '') such that every `P<suffix>` exists, e.g. 'case1.' for ['sample', 'out_sample']. */
  prefixesWith(suffixes: readonly string[]): string[] {
    const [first, ...rest] = suffixes;
    if (first === undefined) return [];
    const prefixes: string[] = [];
    for (const name of this.tensors.keys()) {
      if (!name.endsWith(first)) continue;
      const prefix = name.slice(0, name.length - first.length);
      if (prefix !== '' && !prefix.endsWith('.')) continue;
      if (rest.every((suffix) => this.tensors.has(prefix + suffix))) prefixes.push(prefix);
    }
    return prefixes.sort();
  }

  /** Names under `prefix` (e.g. 'case1.debug.'), without the prefix. */
  namesUnder(prefix: string): string[] {
    return [...this.tensors.keys()].filter((name) => name.startsWith(prefix)).map((name) => name.slice(prefix.length)).sort();
  }
}

/** `<dir>/<component>/<file>` when it exists. */
export function fixtureFile(dir: string, component: string, file: string): string | null {
  const path = join(dir, component, file);
  return existsSync(path) ? path : null;
}

/** A case label: the prefix without its trailing dot, or `default` for unprefixed tensors. */
export function caseLabel(prefix: string): string {
  return prefix === '' ? 'default' : prefix.slice(0, -1);
}
