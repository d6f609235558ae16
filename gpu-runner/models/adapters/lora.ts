// LoRA (Hu et al. 2021, §4.1) on adaptable linear layers as graph INPUTS: y = x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ, which equals
// the merged layer W' = W + scale·B·A that diffusers' `fuse_lora` computes. The weights and the scale are fed at run
// time, and the rank may be a symbolic dimension, so one session serves every LoRA (rank 1, rank 4, or none: scale 0).
import { type Dim, gemm, type Graph, mul, type Value } from '../../onnx/index.ts';
import type { AdaptableLinear } from '../inventory.ts';
import type { LinearAdapter } from '../layers.ts';

export const LORA_SCALE_INPUT = 'lora_scale';
/** The symbolic rank dimension used when one session should serve LoRAs of any rank. */
export const LORA_DYNAMIC_RANK = 'lora_rank';

/** PEFT key format (the fixtures' and diffusers' current one): A = `lora_down`, B = `lora_up` in kohya's words. */
export function loraInputNames(layer: string): { down: string; up: string } {
  return { down: `${layer}.lora_A.weight`, up: `${layer}.lora_B.weight` };
}

export interface LoraInputSpec {
  layer: AdaptableLinear;
  down: string;
  up: string;
}

export class LoraAdapter implements LinearAdapter {
  private readonly targets: Map<string, AdaptableLinear>;
  private scale: Value | undefined;
  /** The inputs this adapter added, in the order layers were built. */
  readonly inputs: LoraInputSpec[] = [];

  /** `rank`: a number for a static graph (training), or a name (default) for a dynamic rank. */
  constructor(
    private readonly g: Graph,
    targets: readonly AdaptableLinear[],
    private readonly rank: Dim = LORA_DYNAMIC_RANK,
  ) {
    this.targets = new Map(targets.map((layer) => [layer.name, layer]));
  }

  delta(layer: AdaptableLinear, x: Value): Value | undefined {
    if (!this.targets.has(layer.name)) return undefined;
    const names = loraInputNames(layer.name);
    const down = this.g.input(names.down, 'float32', [this.rank, layer.inFeatures]);
    const up = this.g.input(names.up, 'float32', [layer.outFeatures, this.rank]);
    this.inputs.push({ layer, ...names });
    this.scale ??= this.g.input(LORA_SCALE_INPUT, 'float32', [1]);
    return mul(gemm(gemm(x, down, undefined, { transB: true }), up, undefined, { transB: true }), this.scale);
  }

  /** Layers the graph was built with but that never reached `delta` (a builder that skipped a target). */
  unusedTargets(): string[] {
    const used = new Set(this.inputs.map((input) => input.layer.name));
    return [...this.targets.keys()].filter((name) => !used.has(name));
  }
}

export interface LoraWeights {
  /** Per layer name: A [rank, in] and B [out, rank]. */
  layers: Map<string, { down: Float32Array; up: Float32Array; rank: number }>;
  /** alpha / rank, as PEFT and diffusers apply it (`network_alpha`). */
  scale: number;
}

/**
 * The feeds for a LoRA: every input of the adapter, zero-filled (rank 1) for layers the LoRA does not cover, and the
 * scale multiplied by the caller's strength. All layers must share one rank when the graph's rank is static.
 */
export function loraFeeds(
  adapter: LoraAdapter,
  weights: LoraWeights | null,
  strength = 1,
): Record<string, { dims: number[]; data: Float32Array }> {
  const feeds: Record<string, { dims: number[]; data: Float32Array }> = {};
  for (const { layer, down, up } of adapter.inputs) {
    const entry = weights?.layers.get(layer.name);
    const rank = entry?.rank ?? 1;
    feeds[down] = { dims: [rank, layer.inFeatures], data: entry?.down ?? new Float32Array(rank * layer.inFeatures) };
    feeds[up] = { dims: [layer.outFeatures, rank], data: entry?.up ?? new Float32Array(layer.outFeatures * rank) };
  }
  feeds[LORA_SCALE_INPUT] = { dims: [1], data: Float32Array.of(weights ? weights.scale * strength : 0) };
  return feeds;
}
