// The hypernetwork's forward pass as an ONNX graph: face image → ViT → face tokens; weight tokens refined K times by a
// transformer decoder over [face tokens; weight tokens]; per-layer heads → LiDB factors (HyperDreamBooth §3.2).
import {
  add,
  attention,
  concat,
  conv2d,
  expand,
  gelu,
  type Graph,
  layerNorm,
  linear,
  quickGelu,
  reduceMean,
  reshape,
  slice,
  split,
  transpose,
  type Value,
} from '../../onnx/index.ts';
import type { TensorShape } from '../../models/inventory.ts';
import { type HypernetworkConfig, vitTokenCount } from './config.ts';
import type { HeadLayout } from './inventory.ts';

export const HYPERNETWORK_INPUT = 'pixels';

/** Where a parameter's Value comes from: graph inputs (training) or initializers (inference). */
export type HypernetworkParams = (name: string, shape: TensorShape) => Value;

export function initializerParams(g: Graph, values: ReadonlyMap<string, Float32Array>): HypernetworkParams {
  return (name, shape) => {
    if (g.has(name)) return g.value(name);
    const data = values.get(name);
    if (!data) throw new Error(`hypernetwork parameter "${name}" is missing`);
    return g.param(name, { dtype: 'float32', dims: [...shape], data });
  };
}

export function inputParams(g: Graph): HypernetworkParams {
  return (name, shape) => (g.has(name) ? g.value(name) : g.input(name, 'float32', shape));
}

interface BlockSpec {
  width: number;
  heads: number;
  mlpRatio: number;
  eps: number;
  activation: 'gelu' | 'quick_gelu';
}

function norm(p: HypernetworkParams, prefix: string, x: Value, width: number, eps: number): Value {
  return layerNorm(x, p(`${prefix}.weight`, [width]), p(`${prefix}.bias`, [width]), { axis: -1, epsilon: eps });
}

function dense(p: HypernetworkParams, prefix: string, x: Value, inFeatures: number, outFeatures: number): Value {
  return linear(x, p(`${prefix}.weight`, [outFeatures, inFeatures]), p(`${prefix}.bias`, [outFeatures]));
}

/** A pre-norm transformer block (timm `Block`): x + Attn(LN(x)), then x + MLP(LN(x)); qkv is one projection. */
function preNormBlock(p: HypernetworkParams, prefix: string, x: Value, s: BlockSpec): Value {
  const w = s.width;
  const qkv = dense(p, `${prefix}.attn.qkv`, norm(p, `${prefix}.norm1`, x, w, s.eps), w, 3 * w);
  const [q, k, v] = split(qkv, [w, w, w], -1) as [Value, Value, Value];
  let h = add(x, dense(p, `${prefix}.attn.proj`, attention(q, k, v, { heads: s.heads }), w, w));
  const hidden = Math.round(w * s.mlpRatio);
  const up = dense(p, `${prefix}.mlp.fc1`, norm(p, `${prefix}.norm2`, h, w, s.eps), w, hidden);
  h = add(h, dense(p, `${prefix}.mlp.fc2`, s.activation === 'gelu' ? gelu(up) : quickGelu(up), hidden, w));
  return h;
}

/** ViT (Dosovitskiy et al. 2021): patch embedding, class token, positional embedding, pre-norm blocks, final norm. */
export function buildVitEncoder(p: HypernetworkParams, config: HypernetworkConfig, pixels: Value): Value {
  const e = config.encoder;
  const [batch] = pixels.staticShape as [number];
  const grid = e.imageSize / e.patchSize;
  const patches = conv2d(pixels, p('encoder.patch_embed.proj.weight', [e.width, 3, e.patchSize, e.patchSize]), p('encoder.patch_embed.proj.bias', [e.width]), {
    stride: e.patchSize,
  });
  const tokens = transpose(reshape(patches, [batch, e.width, grid * grid]), [0, 2, 1]);
  const cls = expand(p('encoder.cls_token', [1, 1, e.width]), [batch, 1, e.width]);
  let x = add(concat([cls, tokens], 1), p('encoder.pos_embed', [1, vitTokenCount(e), e.width]));
  if (e.preNorm) x = norm(p, 'encoder.norm_pre', x, e.width, e.layerNormEps);
  const spec: BlockSpec = { width: e.width, heads: e.heads, mlpRatio: e.mlpRatio, eps: e.layerNormEps, activation: e.activation };
  for (let i = 0; i < e.depth; i++) x = preNormBlock(p, `encoder.blocks.${i}`, x, spec);
  return norm(p, 'encoder.norm', x, e.width, e.layerNormEps);
}

/** The encoder's class token [B, width] from its output tokens [B, T, width]: the face's summary. */
export function classToken(encoded: Value, width: number): Value {
  const [batch] = encoded.staticShape as [number];
  return reshape(slice(encoded, [0], [1], [1]), [batch, width]);
}

/** The decoder's LayerNorm epsilon (timm's ViT default). */
const DECODER_EPS = 1e-6;

export interface HypernetworkOutputs {
  /** Per adapted layer: A_train [B, r, a′] and B_train [B, b′, r]. */
  readonly factors: { aTrain: Value; bTrain: Value }[];
  /** θ_K, the refined weight tokens [B, L, d]. */
  readonly weightTokens: Value;
  /** The encoder's class token [B, width]: the face's summary, read by phase 1's optional attribute probe. */
  readonly faceSummary: Value;
}

export interface HypernetworkBuildOptions {
  /**
   * Several photos of one face in the batch: their encoder tokens are averaged before the decoder, which then predicts
   * one set of factors (batch 1) from the pooled features.
   */
  readonly poolPhotos?: boolean;
}

export function buildHypernetwork(
  p: HypernetworkParams,
  config: HypernetworkConfig,
  heads: readonly HeadLayout[],
  pixels: Value,
  options: HypernetworkBuildOptions = {},
): HypernetworkOutputs {
  const batch = options.poolPhotos ? 1 : (pixels.staticShape as [number])[0];
  const d = config.tokenDim;
  const layers = heads.length;
  const perPhoto = buildVitEncoder(p, config, pixels);
  const encoded = options.poolPhotos ? reduceMean(perPhoto, [0], true) : perPhoto;
  const faceTokens = dense(p, 'face_proj', encoded, config.encoder.width, d);
  const faceCount = vitTokenCount(config.encoder);
  const positions = p('weight_pos_embed', [layers, d]);
  const spec: BlockSpec = { width: d, heads: config.decoderHeads, mlpRatio: config.decoderMlpRatio, eps: DECODER_EPS, activation: 'gelu' };

  // θ₀ = 0: the first decoder input is the positional embedding alone.
  let theta: Value | undefined;
  for (let k = 0; k < config.iterations; k++) {
    const weightTokens = theta ? add(theta, positions) : expand(positions, [batch, layers, d]);
    let x = concat([faceTokens, weightTokens], 1);
    for (let i = 0; i < config.decoderDepth; i++) x = preNormBlock(p, `decoder.blocks.${i}`, x, spec);
    x = norm(p, 'decoder.norm', x, d, DECODER_EPS);
    const delta = dense(p, 'decoder.delta_proj', slice(x, [faceCount], [faceCount + layers], [1]), d, d);
    theta = theta ? add(theta, delta) : delta;
  }
  const faceSummary = classToken(encoded, config.encoder.width);
  const thetaK = config.faceSkip ? add(theta!, reshape(dense(p, 'face_skip', faceSummary, config.encoder.width, d), [batch, 1, d])) : theta!;
  const factors = heads.map((head, i) => {
    const token = reshape(slice(thetaK, [i], [i + 1], [1]), [batch, d]);
    const out = dense(p, `heads.${i}`, token, d, head.aSize + head.bSize);
    return {
      aTrain: reshape(slice(out, [0], [head.aSize], [1]), [batch, ...head.aShape]),
      bTrain: reshape(slice(out, [head.aSize], [head.aSize + head.bSize], [1]), [batch, ...head.bShape]),
    };
  });
  return { factors, weightTokens: thetaK, faceSummary };
}
