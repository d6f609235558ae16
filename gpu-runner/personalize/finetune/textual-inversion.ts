// Textual Inversion (Gal et al. 2022) as a baseline: only the embeddings of the identifier's tokens are trained; the
// rest of the CLIP embedding table, the text encoder and the UNet stay as they are.
import { add, cast, equal, type Graph, matmul, sub, transpose, unsqueeze, type Value } from '../../onnx/index.ts';
import { CLIP_TEXT_PREFIX } from '../../models/clip-text/inventory.ts';
import type { PersonalizationModel } from '../model.ts';

export const TOKEN_EMBEDDING_PARAM = `${CLIP_TEXT_PREFIX}.embeddings.token_embedding.weight`;
export const TI_EMBEDDING_INPUT = 'textual_inversion.embedding';
/** Generation graphs take the ids too, so one session serves every identifier with the same number of tokens. */
export const TI_TOKEN_IDS_INPUT = 'textual_inversion.token_ids';

/** The identifier's CLIP token ids (no BOS/EOS), deduplicated in order. */
export function identifierTokenIds(model: PersonalizationModel, identifier: string): number[] {
  const ids = [...new Set(model.tokenizer.encode(identifier))];
  if (ids.length === 0) throw new Error(`identifier "${identifier}" has no CLIP tokens`);
  return ids;
}

/** The current embedding rows of `ids` (the TI starting point). */
export function embeddingRows(model: PersonalizationModel, ids: readonly number[]): Float32Array {
  const table = model.textEncoder.weights.readAllFloat32().get(TOKEN_EMBEDDING_PARAM);
  if (!table) throw new Error(`text encoder checkpoint has no ${TOKEN_EMBEDDING_PARAM}`);
  const hidden = model.textEncoder.config.hiddenSize;
  const rows = new Float32Array(ids.length * hidden);
  ids.forEach((id, k) => rows.set(table.subarray(id * hidden, (id + 1) * hidden), k * hidden));
  return rows;
}

/**
 * E' = E + Sᵀ·(V − S·E) with S the [k, vocab] one-hot selector of the ids and V [k, hidden] a graph input: the table
 * with those rows replaced by V, built from MatMul/Add only so the gradient reaches V (and nothing of E is trained).
 */
export function withTrainableRows(g: Graph, table: Value, ids: readonly number[], vocab: number, hidden: number): Value {
  const k = ids.length;
  const selector = new Float32Array(k * vocab);
  const selectorT = new Float32Array(vocab * k);
  ids.forEach((id, row) => {
    selector[row * vocab + id] = 1;
    selectorT[id * k + row] = 1;
  });
  const s = g.constant({ dtype: 'float32', dims: [k, vocab], data: selector }, 'ti_selector');
  const sT = g.constant({ dtype: 'float32', dims: [vocab, k], data: selectorT }, 'ti_selector_t');
  const rows = g.input(TI_EMBEDDING_INPUT, 'float32', [k, hidden]);
  return replaceRows(table, s, sT, rows);
}

/**
 * The same substitution for generation, with the token ids as a graph input too (`TI_TOKEN_IDS_INPUT`, int64
 * [vectors], distinct ids): S = (ids[:, None] == 0..vocab−1). The product E' is what the finetune trained through.
 */
export function withFedRows(g: Graph, table: Value, vectors: number, vocab: number, hidden: number): Value {
  const ids = g.input(TI_TOKEN_IDS_INPUT, 'int64', [vectors]);
  const range = g.constant({ dtype: 'int64', dims: [1, vocab], data: BigInt64Array.from({ length: vocab }, (_, i) => BigInt(i)) }, 'ti_vocab_range');
  const s = cast(equal(unsqueeze(ids, [1]), range), 'float32');
  const rows = g.input(TI_EMBEDDING_INPUT, 'float32', [vectors, hidden]);
  return replaceRows(table, s, transpose(s, [1, 0]), rows);
}

/** E + Sᵀ·(V − S·E) for a one-hot selector S [k, vocab] of distinct ids. */
function replaceRows(table: Value, s: Value, sT: Value, rows: Value): Value {
  const e = table.dtype === 'float32' ? table : cast(table, 'float32');
  return add(e, matmul(sT, sub(rows, matmul(s, e))));
}
