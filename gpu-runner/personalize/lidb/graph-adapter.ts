// LiDB (and the rank-relaxed term) injected into a model graph through the models' adapter hook: per adapted layer,
// ΔW·x = B_aux·B_train·A_train·A_aux·x with A_train/B_train taken from graph inputs (or any Values, e.g. a
// hypernetwork's outputs in one composed graph) and the frozen aux bases as initializers.
import { add, concat, gemm, type Graph, matmul, reshape, transpose, type Value } from '../../onnx/index.ts';
import type { AdaptableLinear } from '../../models/inventory.ts';
import type { LinearAdapter } from '../../models/layers.ts';
import type { AuxBasis } from './aux-basis.ts';
import type { AdaptedComponent, AdaptedLayer } from './adapted-layers.ts';

/** The trainable factors of one layer as graph values: A_train [rank, a′], B_train [b′, rank]. */
export interface LidbFactorValues {
  readonly aTrain: Value;
  readonly bTrain: Value;
}
export interface LoraFactorValues {
  readonly down: Value;
  readonly up: Value;
}

/** Graph input names of a layer's factors (stable: callers feed by name). */
export const lidbInputNames = (layerName: string) => ({ aTrain: `lidb.${layerName}.A_train`, bTrain: `lidb.${layerName}.B_train` });
export const relaxLidbInputNames = (layerName: string) => ({ aTrain: `relax.${layerName}.A_train`, bTrain: `relax.${layerName}.B_train` });
export const relaxLoraInputNames = (layerName: string) => ({ down: `relax.${layerName}.lora_down`, up: `relax.${layerName}.lora_up` });
export const auxInitializerNames = (layerName: string) => ({ aAux: `lidb_aux.${layerName}.A_aux`, bAux: `lidb_aux.${layerName}.B_aux` });

export interface LidbAdapterOptions {
  /** Which model this adapter is attached to: the hook names layers by module path within the component. */
  readonly component: AdaptedComponent;
  /** The adapted layers (any components) and their bases, aligned. */
  readonly layers: readonly AdaptedLayer[];
  readonly bases: readonly AuxBasis[];
  /** LiDB rank r; 0 leaves LiDB out (e.g. plain DreamBooth-LoRA). */
  readonly rank: number;
  readonly relax?: { readonly mode: 'lora' | 'lidb'; readonly rank: number };
  /** Where the LiDB factors come from; default: graph inputs named by `lidbInputNames`. */
  readonly lidbSource?: (layer: AdaptedLayer, g: Graph) => LidbFactorValues;
}

/** What the adapter created, by layer name: the inputs to feed (or differentiate) after building. */
export interface LidbAdapterValues {
  readonly lidb: Map<string, LidbFactorValues>;
  readonly relaxLidb: Map<string, LidbFactorValues>;
  readonly relaxLora: Map<string, LoraFactorValues>;
}

export function lidbGraphInputs(g: Graph, layer: AdaptedLayer, basis: AuxBasis, rank: number, names = lidbInputNames(layer.name)): LidbFactorValues {
  return {
    aTrain: g.input(names.aTrain, 'float32', [rank, basis.aEff]),
    bTrain: g.input(names.bTrain, 'float32', [basis.bEff, rank]),
  };
}

export function createLidbAdapter(options: LidbAdapterOptions): LinearAdapter & { readonly values: LidbAdapterValues } {
  const byModule = new Map<string, { layer: AdaptedLayer; basis: AuxBasis }>();
  options.layers.forEach((layer, i) => {
    const basis = options.bases[i];
    if (!basis || basis.layer.name !== layer.name) throw new Error(`LiDB adapter: no aux basis for ${layer.name} at index ${i}`);
    if (layer.component === options.component) byModule.set(layer.modulePath, { layer, basis });
  });
  const values: LidbAdapterValues = { lidb: new Map(), relaxLidb: new Map(), relaxLora: new Map() };
  const auxValues = new Map<string, { aAux: Value; bAux: Value }>();

  function aux(g: Graph, layer: AdaptedLayer, basis: AuxBasis) {
    let found = auxValues.get(layer.name);
    if (!found) {
      const names = auxInitializerNames(layer.name);
      found = {
        aAux: g.param(names.aAux, { dtype: 'float32', dims: [basis.aEff, layer.inFeatures], data: basis.aAux }),
        bAux: g.param(names.bAux, { dtype: 'float32', dims: [layer.outFeatures, basis.bEff], data: basis.bAux }),
      };
      auxValues.set(layer.name, found);
    }
    return found;
  }

  /** x [rows, in] → x·downᵀ·upᵀ [rows, out]: the rank-sized intermediate keeps the cost at rows·rank·(in + out). */
  const lowRank = (x: Value, down: Value, up: Value) => gemm(gemm(x, down, undefined, { transB: true }), up, undefined, { transB: true });

  return {
    values,
    delta(linear: AdaptableLinear, x: Value): Value | undefined {
      const entry = byModule.get(linear.name);
      if (!entry) return undefined;
      const { layer, basis } = entry;
      if (linear.inFeatures !== layer.inFeatures || linear.outFeatures !== layer.outFeatures) {
        throw new Error(`LiDB adapter: ${layer.name} is ${layer.outFeatures}×${layer.inFeatures}, the model's layer is ${linear.outFeatures}×${linear.inFeatures}`);
      }
      const g = x.graph;
      const aTrains: Value[] = [];
      const bTrains: Value[] = [];
      if (options.rank > 0) {
        const lidb = options.lidbSource?.(layer, g) ?? lidbGraphInputs(g, layer, basis, options.rank);
        values.lidb.set(layer.name, lidb);
        aTrains.push(lidb.aTrain);
        bTrains.push(lidb.bTrain);
      }
      if (options.relax?.mode === 'lidb') {
        const relax = lidbGraphInputs(g, layer, basis, options.relax.rank, relaxLidbInputNames(layer.name));
        values.relaxLidb.set(layer.name, relax);
        aTrains.push(relax.aTrain);
        bTrains.push(relax.bTrain);
      }
      let delta: Value | undefined;
      const batched = aTrains[0]?.rank === 3 ? { aTrain: aTrains.shift()!, bTrain: bTrains.shift()! } : undefined;
      if (batched) delta = batchedLowRank(x, batched, aux(g, layer, basis));
      if (aTrains.length > 0) {
        const { aAux, bAux } = aux(g, layer, basis);
        // One rank-(r + R) product: the relax term lives in the same aux bases, so concatenating in rank is exact.
        const aTrain = aTrains.length === 1 ? aTrains[0]! : concat(aTrains, 0);
        const bTrain = bTrains.length === 1 ? bTrains[0]! : concat(bTrains, 1);
        const term = lowRank(x, matmul(aTrain, aAux), matmul(bAux, bTrain));
        delta = delta ? add(delta, term) : term;
      }
      if (options.relax?.mode === 'lora') {
        const names = relaxLoraInputNames(layer.name);
        const down = g.input(names.down, 'float32', [options.relax.rank, layer.inFeatures]);
        const up = g.input(names.up, 'float32', [layer.outFeatures, options.relax.rank]);
        values.relaxLora.set(layer.name, { down, up });
        const loraDelta = lowRank(x, down, up);
        delta = delta ? add(delta, loraDelta) : loraDelta;
      }
      return delta;
    },
  };
}

/**
 * Per-sample factors (A_train [B, r, a′], B_train [B, b′, r], e.g. a hypernetwork's predictions for a batch of faces):
 * the rows of x [B·T, in] are split per sample, each multiplied by its own low-rank ΔW.
 */
function batchedLowRank(x: Value, factors: LidbFactorValues, auxBases: { aAux: Value; bAux: Value }): Value {
  const [rows, inFeatures] = x.staticShape as [number, number];
  const [batch] = factors.aTrain.staticShape as [number];
  if (rows % batch !== 0) throw new Error(`LiDB adapter: ${rows} rows do not split into a batch of ${batch}`);
  const down = matmul(factors.aTrain, auxBases.aAux);
  const up = matmul(auxBases.bAux, factors.bTrain);
  const perSample = reshape(x, [batch, rows / batch, inFeatures]);
  const y = matmul(matmul(perSample, transpose(down, [0, 2, 1])), transpose(up, [0, 2, 1]));
  const outFeatures = up.staticShape[1]!;
  return reshape(y, [rows, outFeatures]);
}

/** A float32 feed in the engine's HostTensor shape. */
export interface Float32Feed {
  readonly dtype: 'float32';
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** Per-layer factors to feed, by layer name (missing layers are fed zeros: ΔW = 0 there). */
export interface AdapterFeedValues {
  readonly lidb?: ReadonlyMap<string, { aTrain: Float32Array; bTrain: Float32Array }>;
  readonly relaxLidb?: ReadonlyMap<string, { aTrain: Float32Array; bTrain: Float32Array }>;
  readonly relaxLora?: ReadonlyMap<string, { down: Float32Array; up: Float32Array }>;
}

function feedFor(value: Value, data: Float32Array | undefined): Float32Feed {
  const dims = value.staticShape;
  const size = dims.reduce((a, b) => a * b, 1);
  if (data && data.length !== size) throw new RangeError(`feed for ${value.name} has ${data.length} values, [${dims.join(', ')}] needs ${size}`);
  return { dtype: 'float32', dims, data: data ?? new Float32Array(size) };
}

/** The feeds of every input an adapter created, from per-layer factor arrays. */
export function lidbAdapterFeeds(values: LidbAdapterValues, factors: AdapterFeedValues): Record<string, Float32Feed> {
  const feeds: Record<string, Float32Feed> = {};
  const isInput = (v: Value) => v.graph.inputs.includes(v.name);
  for (const [name, v] of values.lidb) {
    const f = factors.lidb?.get(name);
    if (isInput(v.aTrain)) feeds[v.aTrain.name] = feedFor(v.aTrain, f?.aTrain);
    if (isInput(v.bTrain)) feeds[v.bTrain.name] = feedFor(v.bTrain, f?.bTrain);
  }
  for (const [name, v] of values.relaxLidb) {
    const f = factors.relaxLidb?.get(name);
    feeds[v.aTrain.name] = feedFor(v.aTrain, f?.aTrain);
    feeds[v.bTrain.name] = feedFor(v.bTrain, f?.bTrain);
  }
  for (const [name, v] of values.relaxLora) {
    const f = factors.relaxLora?.get(name);
    feeds[v.down.name] = feedFor(v.down, f?.down);
    feeds[v.up.name] = feedFor(v.up, f?.up);
  }
  return feeds;
}
