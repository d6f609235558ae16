// Phase 1's training graph (HyperDreamBooth §3.2): hypernetwork(face) → LiDB factors → text encoder + UNet → diffusion
// loss, plus β·L2 to pre-optimized LiDB weights, plus γ·cross-entropy of a linear attribute probe on the encoder's class
// token where the faces carry labels; the hypernetwork's parameters (and the probe's) are the trainable graph inputs.
import { add, type Graph, mul, reduceMean, sub, type Value } from '../../onnx/index.ts';
import { ATTRIBUTE_PROBE, buildAttributeProbe } from './attribute-probe.ts';
import { BindingGraph, buildDiffusionLossGraph } from '../finetune/diffusion-loss-graph.ts';
import { buildHypernetwork, HYPERNETWORK_INPUT, inputParams } from '../hypernetwork/build.ts';
import type { PersonalizationModel } from '../model.ts';

export const PHASE1_OUTPUTS = { loss: 'loss', diffusion: 'diffusion_loss', l2: 'l2_loss', attributes: 'attribute_loss' } as const;

export const targetInputNames = (layerName: string) => ({ aTrain: `target.${layerName}.A_train`, bTrain: `target.${layerName}.B_train` });

export interface Phase1GraphOptions {
  readonly batch: number;
  /** Weight of the diffusion loss (α). */
  readonly alpha: number;
  /** Weight of the L2 to pre-optimized weights (β); 0 builds no target inputs at all. */
  readonly beta: number;
  /**
   * Weight of the attribute probe's cross-entropy (γ; 0 or absent: no probe). It teaches the encoder to read who is in
   * the photo (the paper starts from a pretrained face ViT; a from-scratch encoder needs this signal).
   */
  readonly gamma?: number;
  /** Class counts of the attribute groups (softmax per group); needed when γ > 0. */
  readonly attributeGroups?: readonly number[];
}

export interface Phase1Graph {
  readonly graph: Graph;
  readonly loss: Value;
  /** Trainable inputs: the hypernetwork's parameters (inventory names), then the attribute probe's when γ > 0. */
  readonly parameterNames: readonly string[];
  readonly latentShape: readonly number[];
}

export function buildPhase1Graph(model: PersonalizationModel, options: Phase1GraphOptions): Phase1Graph {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error('phase 1 needs a hypernetwork (config and initial parameters) in the model');
  const g = new BindingGraph('phase1');
  const size = hyper.config.encoder.imageSize;
  const pixels = g.input(HYPERNETWORK_INPUT, 'float32', [options.batch, 3, size, size]);
  const predicted = buildHypernetwork(inputParams(g), hyper.config, hyper.heads, pixels);
  const hypernetworkParameterNames = g.inputs.filter((name) => name !== HYPERNETWORK_INPUT);
  const byLayer = new Map(model.layers.map((layer, i) => [layer.name, predicted.factors[i]!]));
  const built = buildDiffusionLossGraph(model, { lidb: 'source', lidbSource: (layer) => byLayer.get(layer.name)!, batch: options.batch, graph: g });

  let loss = mul(built.loss, options.alpha);
  g.output(built.loss, PHASE1_OUTPUTS.diffusion);
  if (options.beta > 0) {
    // ‖θ̂ − θ*‖² as the mean squared difference per factor, summed over layers (a per-layer scale-free L2).
    let l2: Value | undefined;
    model.layers.forEach((layer, i) => {
      const head = hyper.heads[i]!;
      const names = targetInputNames(layer.name);
      const aTarget = g.input(names.aTrain, 'float32', [options.batch, ...head.aShape]);
      const bTarget = g.input(names.bTrain, 'float32', [options.batch, ...head.bShape]);
      const da = sub(predicted.factors[i]!.aTrain, aTarget);
      const db = sub(predicted.factors[i]!.bTrain, bTarget);
      const term = add(reduceMean(mul(da, da)), reduceMean(mul(db, db)));
      l2 = l2 ? add(l2, term) : term;
    });
    g.output(l2!, PHASE1_OUTPUTS.l2);
    loss = add(loss, mul(l2!, options.beta));
  }
  const gamma = options.gamma ?? 0;
  if (gamma > 0) {
    const probe = buildAttributeProbe(g, predicted.faceSummary, options.attributeGroups ?? []);
    g.output(probe.loss, PHASE1_OUTPUTS.attributes);
    loss = add(loss, mul(probe.loss, gamma));
  }
  const output = g.output(loss, PHASE1_OUTPUTS.loss);
  const parameterNames = gamma > 0 ? [...hypernetworkParameterNames, ATTRIBUTE_PROBE.weight, ATTRIBUTE_PROBE.bias] : hypernetworkParameterNames;
  return { graph: g, loss: output, parameterNames, latentShape: built.latentShape };
}
