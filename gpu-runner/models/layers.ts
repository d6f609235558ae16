// The torch layers SD 1.5 is made of, emitted as standard ONNX ops with parameters named by their checkpoint path.
// `ModelBuilder` records every parameter it takes, so a test can prove a builder reads exactly its inventory.
import {
  add,
  cast,
  constantOfShape,
  conv2d,
  type Graph,
  gemm,
  layerNorm,
  matmul,
  mul,
  reshape,
  sigmoid,
  slice,
  softmax,
  transpose,
  upsampleNearest,
  type Value,
} from '../onnx/index.ts';
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
  private readonly ones = new Map<number, Value>();

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
    let y = gemm(x2, weight, bias, { transB: true });
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

  /**
   * torch `nn.GroupNorm` on NCHW: normalize each group over (C/G, H, W) with LayerNormalization on a [N, G, C/G·H·W]
   * view (standard op, fused, differentiable), then the per-channel affine.
   */
  groupNorm(path: string, x: Value, groups: number, eps: number): Value {
    const shape = x.staticShape;
    const [n, c] = [shape[0]!, shape[1]!];
    if (c % groups !== 0) throw new Error(`${path}: ${c} channels do not split into ${groups} groups`);
    const groupSize = (c / groups) * shape.slice(2).reduce((a, b) => a * b, 1);
    const unit = this.onesOf(groupSize);
    const normalized = reshape(layerNorm(reshape(x, [n, groups, groupSize]), unit, undefined, { axis: -1, epsilon: eps }), shape);
    const perChannel = [c, ...shape.slice(2).map(() => 1)];
    const weight = reshape(this.param(`${path}.weight`, [c]), perChannel);
    const bias = reshape(this.param(`${path}.bias`, [c]), perChannel);
    return add(mul(normalized, weight), bias);
  }

  /**
   * One shared all-ones vector per size (the unit scale of GroupNorm's LayerNormalization), made by ConstantOfShape so
   * the model file does not store it (a 512 px VAE needs 1M of them).
   */
  private onesOf(size: number): Value {
    let unit = this.ones.get(size);
    if (!unit) {
      unit = constantOfShape(this.g, [size], 1);
      this.ones.set(size, unit);
    }
    return unit;
  }

  /** torch `nn.LayerNorm` over the last axis, with affine weight and bias. */
  layerNorm(path: string, x: Value, eps: number): Value {
    const width = x.staticShape[x.rank - 1]!;
    return layerNorm(x, this.param(`${path}.weight`, [width]), this.param(`${path}.bias`, [width]), { axis: -1, epsilon: eps });
  }
}

export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/** CLIP's quick_gelu: x·σ(1.702x) (transformers activations.py). */
export const QUICK_GELU_COEFFICIENT = 1.702;
export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, QUICK_GELU_COEFFICIENT)));
}

/** [B, T, H·D] → [B, H, T, D]. */
function splitHeads(x: Value, heads: number): Value {
  const [b, t, width] = x.staticShape as [number, number, number];
  return transpose(reshape(x, [b, t, heads, width / heads]), [0, 2, 1, 3]);
}

/**
 * Scaled dot-product attention over heads: softmax(q·kᵀ·scale + mask)·v, inputs [B, T, H·D] / [B, S, H·D], output
 * [B, T, H·D]. q is scaled before the product (transformers' CLIP does so; for diffusers' scale-after it is the same
 * value up to float rounding). `mask` (additive, broadcastable to [B, H, T, S]) is optional.
 */
export function multiHeadAttention(q: Value, k: Value, v: Value, heads: number, options: { scale: number; mask?: Value }): Value {
  const [b, t, width] = q.staticShape as [number, number, number];
  const qh = splitHeads(mul(q, options.scale), heads);
  const [, s, kWidth] = k.staticShape as [number, number, number];
  const kt = transpose(reshape(k, [b, s, heads, kWidth / heads]), [0, 2, 3, 1]);
  let scores = matmul(qh, kt);
  if (options.mask) scores = add(scores, options.mask);
  const context = matmul(softmax(scores, -1), splitHeads(v, heads));
  return reshape(transpose(context, [0, 2, 1, 3]), [b, t, width]);
}

/**
 * torch `F.interpolate(mode='nearest')` to the skip connection's size: ×2, cropped when the down path rounded an odd
 * size up (for h = ⌈H/2⌉, floor(d·h/H) = floor(d/2) for every d < H, so the crop is exact).
 */
export function upsampleNearestTo(x: Value, height: number, width: number): Value {
  const up = upsampleNearest(x, 2);
  const [, , h2, w2] = up.staticShape as [number, number, number, number];
  if (h2 === height && w2 === width) return up;
  if (height > h2 || width > w2 || h2 - height > 1 || w2 - width > 1) {
    throw new Error(`upsample: cannot reach ${height}×${width} from ${h2 / 2}×${w2 / 2}`);
  }
  return slice(up, [0, 0], [height, width], [2, 3]);
}
