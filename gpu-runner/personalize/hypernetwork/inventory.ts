// Every hypernetwork parameter by name and shape, and a seeded initialization. Encoder names follow timm's
// VisionTransformer (`cls_token`, `pos_embed`, `patch_embed.proj`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`,
// `norm`) under `encoder.`, so timm checkpoints load by name.
import { InventoryBuilder, numelOf, type ParameterSpec } from '../../models/inventory.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import type { LidbLayerShape } from '../lidb/aux-basis.ts';
import { type HypernetworkConfig, VIT_INIT_STD, vitTokenCount } from './config.ts';

/** Per adapted layer, the numbers its head predicts: A_train [r, a′] then B_train [b′, r], flattened. */
export interface HeadLayout {
  readonly layer: LidbLayerShape;
  readonly aSize: number;
  readonly bSize: number;
  readonly aShape: readonly [number, number];
  readonly bShape: readonly [number, number];
}

export function headLayouts(layers: readonly LidbLayerShape[], lidb: { a: number; b: number; r: number }): HeadLayout[] {
  return layers.map((layer) => {
    const aEff = Math.min(lidb.a, layer.inFeatures);
    const bEff = Math.min(lidb.b, layer.outFeatures);
    return { layer, aSize: lidb.r * aEff, bSize: bEff * lidb.r, aShape: [lidb.r, aEff], bShape: [bEff, lidb.r] };
  });
}

function transformerBlock(inventory: InventoryBuilder, prefix: string, width: number, mlpRatio: number): void {
  const hidden = Math.round(width * mlpRatio);
  inventory.norm(`${prefix}.norm1`, width);
  inventory.linear(`${prefix}.attn.qkv`, width, 3 * width);
  inventory.linear(`${prefix}.attn.proj`, width, width);
  inventory.norm(`${prefix}.norm2`, width);
  inventory.linear(`${prefix}.mlp.fc1`, width, hidden);
  inventory.linear(`${prefix}.mlp.fc2`, hidden, width);
}

export function hypernetworkInventory(config: HypernetworkConfig, heads: readonly HeadLayout[]): ParameterSpec[] {
  const inventory = new InventoryBuilder();
  const { encoder, tokenDim } = config;
  const width = encoder.width;
  inventory.add('encoder.cls_token', [1, 1, width]);
  inventory.add('encoder.pos_embed', [1, vitTokenCount(encoder), width]);
  inventory.conv2d('encoder.patch_embed.proj', 3, width, encoder.patchSize);
  if (encoder.preNorm) inventory.norm('encoder.norm_pre', width);
  for (let i = 0; i < encoder.depth; i++) transformerBlock(inventory, `encoder.blocks.${i}`, width, encoder.mlpRatio);
  inventory.norm('encoder.norm', width);
  inventory.linear('face_proj', width, tokenDim);
  inventory.add('weight_pos_embed', [heads.length, tokenDim]);
  for (let i = 0; i < config.decoderDepth; i++) transformerBlock(inventory, `decoder.blocks.${i}`, tokenDim, config.decoderMlpRatio);
  inventory.norm('decoder.norm', tokenDim);
  inventory.linear('decoder.delta_proj', tokenDim, tokenDim);
  if (config.faceSkip) inventory.linear('face_skip', width, tokenDim);
  heads.forEach((head, i) => inventory.linear(`heads.${i}`, tokenDim, head.aSize + head.bSize));
  return inventory.build();
}

/**
 * Seeded initial values: norms weight 1 / bias 0, other biases 0, the per-layer heads N(0, headInitStd²), every other
 * weight N(0, 0.02²) (timm). Each tensor draws from its own named stream, so adding a layer changes no other tensor.
 *
 * With `heads`, each head's bias starts where LiDB from zero starts: A_train N(0, 1/a′), B_train 0, so ΔW = 0 but
 * ∂L/∂B_train ≠ 0. With every head near zero instead, ΔW = A·B sits at a saddle (both factors' gradients vanish with
 * the other factor) and training barely moves the prediction (docs/hypernetwork.md).
 */
export function initHypernetworkParams(
  config: HypernetworkConfig,
  inventory: readonly ParameterSpec[],
  seed: number,
  heads?: readonly HeadLayout[],
): Map<string, Float32Array> {
  const params = new Map<string, Float32Array>();
  for (const { name, shape } of inventory) {
    const n = numelOf(shape);
    const isNorm = /(^|\.)norm\d?(_pre)?\.(weight|bias)$/.test(name);
    let values: Float32Array;
    if (isNorm) values = new Float32Array(n).fill(name.endsWith('.weight') ? 1 : 0);
    else if (name.endsWith('.bias')) values = new Float32Array(n);
    else values = fillGaussianFloat32(namedRng(seed, `hypernetwork-init/${name}`), n, name.startsWith('heads.') ? config.headInitStd : VIT_INIT_STD);
    params.set(name, values);
  }
  heads?.forEach((head, i) => {
    const bias = params.get(`heads.${i}.bias`);
    if (!bias || bias.length !== head.aSize + head.bSize) throw new Error(`hypernetwork init: heads.${i}.bias does not match its layer's LiDB layout`);
    bias.set(fillGaussianFloat32(namedRng(seed, `hypernetwork-init/heads.${i}.bias/A_train`), head.aSize, 1 / Math.sqrt(head.aShape[1])));
  });
  return params;
}
