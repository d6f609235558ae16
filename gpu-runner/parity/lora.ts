// LoRA parity (`lora/`): the UNet of `unet/` with every LoRA file `lora/<variant>.safetensors` fed as graph inputs, one
// session per case serving all variants (and the base model, scale 0), against P.out_sample_<variant>; plus the
// merge in isolation: `<r>.example_merged.<layer>.weight` = W + scale·B·A.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../onnx/index.ts';
import { readLoraFile } from '../models/adapters/lora-file.ts';
import { LoraAdapter, loraFeeds, type LoraWeights } from '../models/adapters/lora.ts';
import { openUnetFolder, type UnetComponent } from '../models/checkpoint/diffusers-folder.ts';
import { inlineParams } from '../models/params.ts';
import { openGraphSession } from '../models/session.ts';
import { buildUnetGraph, UNET_INPUTS, UNET_OUTPUT } from '../models/unet/build.ts';
import { unetAttentionLinears } from '../models/unet/inventory.ts';
import { compare, failure, type ParityCheck, type ParityResult, scaledTolerance } from './check.ts';
import { caseLabel, FixtureTensors, fixtureFile, MODEL_RELATIVE_TOLERANCE } from './model-fixtures.ts';

const COMPONENT = 'lora';
const BASE_VARIANT = 'base';
const OUTPUT_PREFIX = 'out_sample_';

function loraFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(join(dir, COMPONENT))) {
    if (name.endsWith('.safetensors') && name !== 'io.safetensors') files.set(name.slice(0, -'.safetensors'.length), join(dir, COMPONENT, name));
  }
  return files;
}

async function* outputCases(unet: UnetComponent, io: FixtureTensors, loras: Map<string, LoraWeights>): AsyncIterable<ParityResult> {
  const targets = unetAttentionLinears(unet.plan);
  const params = inlineParams(unet.weights);
  for (const prefix of io.prefixesWith(['sample', 'timestep', 'encoder_hidden_states'])) {
    const variants = io.namesUnder(prefix).filter((name) => name.startsWith(OUTPUT_PREFIX)).map((name) => name.slice(OUTPUT_PREFIX.length));
    if (variants.length === 0) continue;
    const label = caseLabel(prefix);
    try {
      const [batch, , height, width] = io.shape(`${prefix}sample`) as [number, number, number, number];
      const graph = new Graph('unet_lora');
      const adapter = new LoraAdapter(graph, targets);
      buildUnetGraph(unet.plan, params, { batch, height, width, textLength: io.shape(`${prefix}encoder_hidden_states`)[1]!, adapters: [adapter], graph });
      const session = await openGraphSession(graph);
      try {
        for (const variant of variants) {
          const expected = io.float32(`${prefix}${OUTPUT_PREFIX}${variant}`);
          const tolerance = scaledTolerance(MODEL_RELATIVE_TOLERANCE, expected);
          const weights = variant === BASE_VARIANT ? null : loras.get(variant);
          if (weights === undefined) {
            yield failure(COMPONENT, `${label}.${variant}`, tolerance, new Error(`no lora/${variant}.safetensors for ${prefix}${OUTPUT_PREFIX}${variant}`));
            continue;
          }
          const feeds = Object.fromEntries(Object.entries(loraFeeds(adapter, weights)).map(([name, t]) => [name, { dtype: 'float32' as const, ...t }]));
          const outputs = await session.run({
            ...feeds,
            [UNET_INPUTS.sample]: io.feed(`${prefix}sample`),
            [UNET_INPUTS.timestep]: io.feedPerRow(`${prefix}timestep`, batch),
            [UNET_INPUTS.encoderHiddenStates]: io.feed(`${prefix}encoder_hidden_states`),
          });
          yield compare(COMPONENT, `${label}.${variant}`, outputs[UNET_OUTPUT]!, expected, tolerance);
        }
      } finally {
        await session.release();
      }
    } catch (error) {
      yield failure(COMPONENT, label, MODEL_RELATIVE_TOLERANCE, error);
    }
  }
}

/** W + scale·B·A on the host, as diffusers' `fuse_lora` merges it. */
export function mergeLoraWeight(weight: Float32Array, out: number, inFeatures: number, lora: { down: Float32Array; up: Float32Array; rank: number }, scale: number): Float32Array {
  const merged = Float32Array.from(weight);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inFeatures; i++) {
      let sum = 0;
      for (let r = 0; r < lora.rank; r++) sum += lora.up[o * lora.rank + r]! * lora.down[r * inFeatures + i]!;
      merged[o * inFeatures + i] = merged[o * inFeatures + i]! + scale * sum;
    }
  }
  return merged;
}

function* mergeCases(unet: UnetComponent, io: FixtureTensors, loras: Map<string, LoraWeights>): Iterable<ParityResult> {
  const targets = new Map(unetAttentionLinears(unet.plan).map((layer) => [layer.name, layer]));
  for (const name of io.tensors.keys()) {
    const match = /^(.+)\.example_merged\.(.+)\.weight$/.exec(name);
    if (!match) continue;
    const [, variant, layerName] = match as unknown as [string, string, string];
    const label = `${variant}.merge.${layerName}`;
    const weights = loras.get(variant) ?? loras.get(`lora_${variant}`);
    const layer = targets.get(layerName);
    const lora = weights?.layers.get(layerName);
    if (!weights || !layer || !lora) {
      yield failure(COMPONENT, label, MODEL_RELATIVE_TOLERANCE, new Error(`no LoRA file or layer for ${name}`));
      continue;
    }
    const expected = io.float32(name);
    const merged = mergeLoraWeight(unet.weights.readFloat32(`${layerName}.weight`), layer.outFeatures, layer.inFeatures, lora, weights.scale);
    yield compare(COMPONENT, label, merged, expected, scaledTolerance(MODEL_RELATIVE_TOLERANCE, expected));
  }
}

async function* runLoraParityUnchecked(dir: string): AsyncIterable<ParityResult> {
  const ioPath = fixtureFile(dir, COMPONENT, 'io.safetensors');
  if (!ioPath) return;
  const io = FixtureTensors.load(ioPath);
  const unet = openUnetFolder(join(dir, 'unet'));
  const targets = unetAttentionLinears(unet.plan);
  const loras = new Map([...loraFiles(dir)].map(([variant, path]) => [variant, readLoraFile(path, targets)]));
  yield* outputCases(unet, io, loras);
  yield* mergeCases(unet, io, loras);
}

export const loraParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (dir) => fixtureFile(dir, COMPONENT, 'io.safetensors') !== null && fixtureFile(dir, 'unet', 'config.json') !== null,
  run: runLoraParity,
};

/** A check never throws: a fixture or checkpoint that cannot even be opened is one failed `<setup>` result. */
async function* runLoraParity(dir: string): AsyncIterable<ParityResult> {
  try {
    yield* runLoraParityUnchecked(dir);
  } catch (error) {
    yield failure(COMPONENT, '<setup>', MODEL_RELATIVE_TOLERANCE, error);
  }
}
