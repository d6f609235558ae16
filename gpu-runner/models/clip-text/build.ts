// transformers' CLIPTextModel forward (modeling_clip.py, v4.3x text path): token + position embeddings, pre-LN
// encoder layers with causal self-attention (q scaled before q·kᵀ, mask filled with float32's lowest value),
// quick_gelu MLP, final LayerNorm; pooled output = the row at the EOS position.
import { add, attention, cast, equal, gather, gelu, Graph, matmul, mul, quickGelu, reduceMax, reshape, slice, type Value } from '../../onnx/index.ts';
import { type LinearAdapter, ModelBuilder } from '../layers.ts';
import type { AdaptableLinear } from '../inventory.ts';
import type { ParamSource } from '../params.ts';
import type { InferencePrecision } from '../precision.ts';
import { type ClipTextConfig, LEGACY_EOS_TOKEN_ID } from './config.ts';
import { CLIP_TEXT_PREFIX, clipLayerPath, clipTextLinears } from './inventory.ts';

/** torch.finfo(float32).min: transformers fills masked attention scores with it (not −inf). */
export const FLOAT32_LOWEST = -3.4028234663852886e38;

export const CLIP_TEXT_INPUT = 'input_ids';
export const CLIP_TEXT_OUTPUTS = { lastHiddenState: 'last_hidden_state', pooled: 'pooler_output' } as const;

export interface ClipTextGraphOptions {
  batch: number;
  /** Tokens per prompt (77 for SD 1.5). */
  length: number;
  adapters?: readonly LinearAdapter[];
  /** Also output `debug.hidden_states.k` (embeddings, then each layer before the final LayerNorm). */
  debug?: boolean;
  graph?: Graph;
  /** 'fp16' for sampling on CUDA (`../precision.ts`); default 'fp32', which every training graph uses. */
  precision?: InferencePrecision;
}

export interface ClipTextGraph {
  graph: Graph;
  builder: ModelBuilder;
  lastHiddenState: Value;
  pooled: Value;
}

function causalMask(g: Graph, length: number): Value {
  const data = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) data[i * length + j] = FLOAT32_LOWEST;
  return g.constant({ dtype: 'float32', dims: [1, 1, length, length], data }, 'causal_mask');
}

/**
 * One-hot of the pooled position per row, [B, 1, T]: the first position holding the largest id (legacy
 * `eos_token_id` 2, i.e. torch.argmax), or the first holding `eosTokenId`. Built from comparisons rather than ArgMax
 * so the selection is exact and differentiable for the embeddings (textual inversion trains through it).
 */
function poolingSelector(ids: Value, config: ClipTextConfig): Value {
  const [batch, length] = ids.staticShape as [number, number];
  const g = ids.graph;
  // Token ids are < 2^24, so float32 holds them exactly.
  const idsFloat = cast(ids, 'float32');
  const hits =
    config.eosTokenId === LEGACY_EOS_TOKEN_ID
      ? cast(equal(idsFloat, reduceMax(idsFloat, [1], true)), 'float32')
      : cast(equal(idsFloat, config.eosTokenId), 'float32');
  // Among the hits, the earliest position scores highest: hit · (T − position).
  const reversePositions = g.constant({ dtype: 'float32', dims: [1, length], data: Float32Array.from({ length }, (_, t) => length - t) }, 'reverse_positions');
  const score = mul(hits, reversePositions);
  const first = cast(equal(score, reduceMax(score, [1], true)), 'float32');
  return reshape(first, [batch, 1, length]);
}

export function buildClipTextGraph(config: ClipTextConfig, params: ParamSource, options: ClipTextGraphOptions): ClipTextGraph {
  const { batch, length } = options;
  if (length > config.maxPositionEmbeddings) throw new Error(`text_encoder: ${length} tokens exceed ${config.maxPositionEmbeddings} positions`);
  const g = options.graph ?? new Graph('text_encoder');
  const mb = new ModelBuilder(g, params, options.adapters ?? [], options.precision);
  const h = config.hiddenSize;
  const debug = (name: string, v: Value) => {
    if (options.debug) g.output(mb.leave(v), `debug.${name}`);
  };

  const ids = g.input(CLIP_TEXT_INPUT, 'int64', [batch, length]);
  const tokenEmbedding = mb.param(`${CLIP_TEXT_PREFIX}.embeddings.token_embedding.weight`, [config.vocabSize, h]);
  const positionEmbedding = mb.param(`${CLIP_TEXT_PREFIX}.embeddings.position_embedding.weight`, [config.maxPositionEmbeddings, h]);
  let hidden = add(gather(tokenEmbedding, ids, 0), slice(positionEmbedding, [0], [length], [0]));
  debug('hidden_states.0', hidden);

  const mask = causalMask(g, length);
  const linears = new Map<string, AdaptableLinear>(clipTextLinears(config).map((l) => [l.name, l]));
  const layerLinear = (layer: number, suffix: string) => linears.get(`${clipLayerPath(layer)}.${suffix}`)!;
  const activation = config.hiddenAct === 'quick_gelu' ? quickGelu : (x: Value) => gelu(x);
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const path = clipLayerPath(layer);
    const normed = mb.layerNorm(`${path}.layer_norm1`, hidden, config.layerNormEps);
    const attended = attention(
      mb.linear(layerLinear(layer, 'self_attn.q_proj'), normed),
      mb.linear(layerLinear(layer, 'self_attn.k_proj'), normed),
      mb.linear(layerLinear(layer, 'self_attn.v_proj'), normed),
      { heads: config.numAttentionHeads, scale: 1 / Math.sqrt(config.headDim), mask },
    );
    hidden = add(hidden, mb.linear(layerLinear(layer, 'self_attn.out_proj'), attended));
    const mlpIn = mb.layerNorm(`${path}.layer_norm2`, hidden, config.layerNormEps);
    hidden = add(hidden, mb.linear(layerLinear(layer, 'mlp.fc2'), activation(mb.linear(layerLinear(layer, 'mlp.fc1'), mlpIn))));
    debug(`hidden_states.${layer + 1}`, hidden);
  }

  const last = mb.leave(mb.layerNorm(`${CLIP_TEXT_PREFIX}.final_layer_norm`, hidden, config.layerNormEps));
  const pooled = reshape(matmul(poolingSelector(ids, config), last), [batch, h]);
  return {
    graph: g,
    builder: mb,
    lastHiddenState: g.output(last, CLIP_TEXT_OUTPUTS.lastHiddenState),
    pooled: g.output(pooled, CLIP_TEXT_OUTPUTS.pooled),
  };
}
