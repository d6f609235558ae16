// The torch layers SD 1.5 is made of, with parameters named by their checkpoint path. The maths is the engine's one
// layer library (`../onnx/nn/`); `ModelBuilder` adds the checkpoint names and the adapters, and records every
// parameter it takes, so a test can prove a builder reads exactly its inventory.
import { float32ToFloat16Bits } from '../io/safetensors.ts';
import { add, cast, conv2d, type DType, type Graph, groupNorm, isExternal, layerNorm, linear, reshape, type TensorValue, type Value } from '../onnx/index.ts';
import type { AdaptableLinear, TensorShape } from './inventory.ts';
import type { ParamSource } from './params.ts';
import { computeDtype, type InferencePrecision } from './precision.ts';

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

  /** The element type of weights and activations: float32, or float16 for an fp16 inference graph. */
  readonly dtype: DType;

  constructor(
    readonly g: Graph,
    private readonly params: ParamSource,
    private readonly adapters: readonly LinearAdapter[] = [],
    readonly precision: InferencePrecision = 'fp32',
  ) {
    this.dtype = computeDtype(precision);
  }

  /**
   * Parameter `name` in the graph's compute type (`dtype` unless asked otherwise): a float16 checkpoint is widened
   * by a Cast in an fp32 graph and used as stored in an fp16 one; float32 data in memory is narrowed when the graph
   * is built (the model file holds halves), float32 external data by a Cast that onnxruntime folds at load.
   */
  param(name: string, shape: TensorShape, dtype: DType = this.dtype): Value {
    const existing = this.values.get(name);
    if (existing) return cast(existing, dtype);
    const stored = this.g.param(name, narrowed(this.params.tensor(name, shape), dtype));
    const value = cast(stored, dtype);
    this.used.push(name);
    this.values.set(name, value);
    return value;
  }

  /** A graph input (float32) in the compute type: Cast at the boundary of an fp16 graph. */
  enter(x: Value): Value {
    return cast(x, this.dtype);
  }

  /** A value for a graph output: float32 in both precisions, so callers read the same tensors. */
  leave(x: Value): Value {
    return cast(x, 'float32');
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
    // Adapter weights are float32 inputs and LiDB/LoRA deltas are small next to the weights they adjust (the
    // precision paragraph of ../onnx/runtime/README.md): an fp16 graph computes each delta in float32 and narrows it.
    const x32 = this.adapters.length > 0 ? cast(x2, 'float32') : x2;
    for (const adapter of this.adapters) {
      const delta = adapter.delta(layer, x32);
      if (delta) y = add(y, cast(delta, this.dtype));
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
   * torch `nn.GroupNorm` on NCHW with its affine weight and bias. Always float32 inside: a group's mean and variance
   * sum thousands of values (a 512 px UNet group holds 10·64·64), and the variance of large activations overflows
   * float16's 65504.
   */
  groupNorm(path: string, x: Value, groups: number, eps: number): Value {
    const c = x.staticShape[1]!;
    const weight = this.param(`${path}.weight`, [c], 'float32');
    const bias = this.param(`${path}.bias`, [c], 'float32');
    return cast(groupNorm(cast(x, 'float32'), groups, weight, bias, eps), x.dtype);
  }

  /** torch `nn.LayerNorm` over the last axis, with affine weight and bias; float32 inside, as the GroupNorm. */
  layerNorm(path: string, x: Value, eps: number): Value {
    const width = x.staticShape[x.rank - 1]!;
    const weight = this.param(`${path}.weight`, [width], 'float32');
    const bias = this.param(`${path}.bias`, [width], 'float32');
    return cast(layerNorm(cast(x, 'float32'), weight, bias, { axis: -1, epsilon: eps }), x.dtype);
  }
}

/** float32 data in memory narrowed to float16 when the graph wants halves; anything else is stored as given. */
function narrowed(t: TensorValue, dtype: DType): TensorValue {
  if (dtype !== 'float16' || t.dtype !== 'float32' || isExternal(t)) return t;
  return { dtype: 'float16', dims: t.dims, data: float32ToFloat16Bits(t.data as Float32Array) };
}
