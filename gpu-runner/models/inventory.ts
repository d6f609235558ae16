// A model's parameter inventory: every tensor a checkpoint must hold, by its checkpoint name, with its shape.
// Builders derive it from the config alone, so a real diffusers/transformers checkpoint can be checked name for name
// and shape for shape before any graph is built (and the full-size SD 1.5 manifests prove the mapping).

export type TensorShape = readonly number[];

export interface ParameterSpec {
  /** The checkpoint's state-dict key, e.g. `down_blocks.0.resnets.0.conv1.weight`. */
  readonly name: string;
  readonly shape: TensorShape;
}

/**
 * A linear layer that can take an extra low-rank delta (LoRA, LiDB) from graph inputs. Named by its checkpoint module
 * path (the weight is `${name}.weight`), shaped like torch's `nn.Linear`: weight [outFeatures, inFeatures].
 */
export interface AdaptableLinear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: boolean;
  /** What the layer is, so a caller can select a subset (e.g. UNet `attn1.to_q`, CLIP `mlp.fc1`). */
  readonly kind: string;
}

/** Collects parameters in registration order (the order torch's `state_dict()` lists them). */
export class InventoryBuilder {
  private readonly specs: ParameterSpec[] = [];
  private readonly seen = new Set<string>();

  add(name: string, shape: TensorShape): void {
    if (this.seen.has(name)) throw new Error(`inventory: parameter "${name}" declared twice`);
    for (const dim of shape) {
      if (!Number.isInteger(dim) || dim <= 0) throw new Error(`inventory: "${name}" has invalid shape [${shape.join(', ')}]`);
    }
    this.seen.add(name);
    this.specs.push({ name, shape: [...shape] });
  }

  /** torch `nn.Linear(inFeatures, outFeatures, bias)`. */
  linear(path: string, inFeatures: number, outFeatures: number, bias = true): void {
    this.add(`${path}.weight`, [outFeatures, inFeatures]);
    if (bias) this.add(`${path}.bias`, [outFeatures]);
  }

  /** torch `nn.Conv2d(inChannels, outChannels, kernel)` with bias. */
  conv2d(path: string, inChannels: number, outChannels: number, kernel: number, bias = true): void {
    this.add(`${path}.weight`, [outChannels, inChannels, kernel, kernel]);
    if (bias) this.add(`${path}.bias`, [outChannels]);
  }

  /** GroupNorm / LayerNorm with affine weight and bias. */
  norm(path: string, channels: number): void {
    this.add(`${path}.weight`, [channels]);
    this.add(`${path}.bias`, [channels]);
  }

  build(): ParameterSpec[] {
    return [...this.specs];
  }
}

export function numelOf(shape: TensorShape): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function parameterCount(inventory: readonly ParameterSpec[]): number {
  return inventory.reduce((total, spec) => total + numelOf(spec.shape), 0);
}

export function shapesEqual(a: TensorShape, b: TensorShape): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

export function formatShape(shape: TensorShape): string {
  return `[${shape.join(', ')}]`;
}
