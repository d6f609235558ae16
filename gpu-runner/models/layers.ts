// The torch layers SD 1.5 is made of, with parameters named by their checkpoint path. The maths is the engine's one
// layer library (`../onnx/nn/`); `ModelBuilder` adds the checkpoint names and the adapters, and records every
// parameter it takes, so a test can prove a builder reads exactly its inventory.
import { add, cast, conv2d, type Graph, groupNorm, layerNorm, linear, reshape, type Value } from '../onnx/index.ts';
import type { AdaptableLinear, TensorShape } from './inventory.ts';
import type { ParamSource } from './params.ts';

/**
 * Adds a low-rank (or any) delta to an adaptable linear layer's output: LoRA, LiDB, or both at once. It receives the
 * layer's input flattened to [rows, inFeatures] and returns [rows, outFeatures], or undefined to leave the layer alone.
 * Its weights are graph inputs, so one session serves every set of adapter weights.
 */
export interface LinearAdapter {
  delta(layer: AdaptableLinear, x: Value): Value | undefined;
}

export class ModelBuilder {
  /** Every parameter taken, in order: the set must equal the model's inventory. */
  readonly used: string[] = [];
  private readonly values = new Map<string, Value>();

  constructor(
    readonly g: Graph,
    private readonly params: ParamSource,
    private readonly adapters: readonly LinearAdapter[] = [],
  ) {}

  /** A float32 value for parameter `name` (float16 checkpoints are widened by a Cast). */
  param(name: string, shape: TensorShape): Value {
    const existing = this.values.get(name);
    if (existing) return existing;
    const stored = this.g.param(name, this.params.tensor(name, shape));
    const value = stored.dtype === 'float32' ? stored : cast(stored, 'float32');
    this.used.push(name);
    this.values.set(name, value);
    return value;
  }

  /**
   * torch `nn.Linear` on the last axis: y = x·Wᵀ + b, W stored [out, in] as in the checkpoint. Flattened to 2-D so a
   * single Gemm (transB) reads the weight as stored, plus each adapter's delta.
   */
  linear(layer: AdaptableLinear, x: Value): Value {
    const shape = x.staticShape;
    const inFeatures = shape[shape.length - 1]!;
    if (inFeatures !== layer.inFeatures) throw new Error(`${layer.name}: input has ${inFeatures} features, layer takes ${layer.inFeatures}`);
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const x2 = shape.length === 2 ? x : reshape(x, [rows, inFeatures]);
    const weight = this.param(`${layer.name}.weight`, [layer.outFeatures, layer.inFeatures]);
    const bias = layer.bias ? this.param(`${layer.name}.bias`, [layer.outFeatures]) : undefined;
    let y = linear(x2, weight, bias);
    for (const adapter of this.adapters) {
      const delta = adapter.delta(layer, x2);
      if (delta) y = add(y, delta);
    }
    return shape.length === 2 ? y : reshape(y, [...shape.slice(0, -1), layer.outFeatures]);
  }

  /** torch `nn.Conv2d` with bias, square kernel, symmetric padding. */
  conv2d(path: string, x: Value, outChannels: number, kernel: number, options: { stride?: number; padding?: number } = {}): Value {
    const inChannels = x.staticShape[1]!;
    const weight = this.param(`${path}.weight`, [outChannels, inChannels, kernel, kernel]);
    const bias = this.param(`${path}.bias`, [outChannels]);
    return conv2d(x, weight, bias, { stride: options.stride ?? 1, padding: options.padding ?? 0 });
  }

  /** torch `nn.GroupNorm` on NCHW with its affine weight and bias. */
  groupNorm(path: string, x: Value, groups: number, eps: number): Value {
    const c = x.staticShape[1]!;
    return groupNorm(x, groups, this.param(`${path}.weight`, [c]), this.param(`${path}.bias`, [c]), eps);
  }

  /** torch `nn.LayerNorm` over the last axis, with affine weight and bias. */
  layerNorm(path: string, x: Value, eps: number): Value {
    const width = x.staticShape[x.rank - 1]!;
    return layerNorm(x, this.param(`${path}.weight`, [width]), this.param(`${path}.bias`, [width]), { axis: -1, epsilon: eps });
  }
}
