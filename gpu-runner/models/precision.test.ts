// The precision option of the inference builders: 'fp32' leaves today's graphs byte for byte, 'fp16' builds graphs
// with float16 weights and activations (float32 at the boundaries and in the norms and softmax) whose outputs stay
// near the fp32 ones on the tiny SD 1.5 configs.
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Graph, type HostTensor, serializeModel } from '../onnx/index.ts';
import { fillGaussianFloat32, Pcg32 } from '../random/index.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { LORA_SCALE_INPUT, LoraAdapter, loraFeeds, type LoraWeights } from './adapters/lora.ts';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from './checkpoint/diffusers-folder.ts';
import { buildClipTextGraph, CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS } from './clip-text/build.ts';
import { inlineParams } from './params.ts';
import type { InferencePrecision } from './precision.ts';
import { float32Feed, openGraphSession } from './session.ts';
import { buildUnetGraph, UNET_INPUTS, UNET_OUTPUT } from './unet/build.ts';
import { unetAttentionLinears } from './unet/inventory.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph, VAE_DECODE } from './vae/build.ts';

const tiny = (component: string) => referencePath('sd15-tiny', component);
const digest = (g: Graph) => createHash('sha256').update(serializeModel(g)).digest('hex');
const unet = openUnetFolder(tiny('unet'));
const text = openTextEncoderFolder(tiny('text_encoder'));
const vae = openVaeFolder(tiny('vae'));

const unetGraph = (precision?: InferencePrecision) =>
  buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 1, height: 8, width: 8, textLength: 77, ...(precision ? { precision } : {}) }).graph;
const textGraph = (precision?: InferencePrecision) =>
  buildClipTextGraph(text.config, inlineParams(text.weights), { batch: 1, length: 77, ...(precision ? { precision } : {}) }).graph;
const decoderGraph = (precision?: InferencePrecision) =>
  buildVaeDecoderGraph(vae.plan, inlineParams(vae.weights), { batch: 1, height: 4, width: 4, ...(precision ? { precision } : {}) }).graph;

describe('fp32 graphs are the graphs built before the precision option existed', () => {
  // sha256 of the serialized tiny graphs (inline weights) built by the commit before fp16 graphs existed: fp32 must
  // stay byte-identical, so the parity fixtures keep holding. A deliberate change to an fp32 graph updates these.
  const BEFORE_FP16 = {
    unet: '4ea428ee9a8659cafb751ef30e74747ba2cbf466f8cd6b84d432962cb847177b',
    unetLora: '17ad28d14ba2d882f8acf7b00a487b240f23f24ab73e53859d0d5b5704ecaaf4',
    text: '725b6d0010fd3e57a2ae388a0da7f7ab78276b02552ec5d5cac43d757b07bd15',
    vaeDecoder: '87e037bdd7262fb418b464b3675dc5c3816f45a522e8ea969590cf537389e6b9',
    vaeEncoder: 'e676aa4c8be45181a69b9d6b22a4cbc6c844c55dab2d60cd7e11a9480de3d99a',
  };

  it('UNet (also with a LoRA), text encoder, VAE decoder and encoder, by default and with precision fp32', () => {
    for (const precision of [undefined, 'fp32'] as const) {
      expect(digest(unetGraph(precision))).toBe(BEFORE_FP16.unet);
      expect(digest(textGraph(precision))).toBe(BEFORE_FP16.text);
      expect(digest(decoderGraph(precision))).toBe(BEFORE_FP16.vaeDecoder);
      const encoder = buildVaeEncoderGraph(vae.plan, inlineParams(vae.weights), { batch: 1, height: 16, width: 16, ...(precision ? { precision } : {}) });
      expect(digest(encoder.graph)).toBe(BEFORE_FP16.vaeEncoder);
      const g = new Graph('unet');
      const lora = new LoraAdapter(g, unetAttentionLinears(unet.plan));
      buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 1, height: 8, width: 8, textLength: 77, adapters: [lora], graph: g, ...(precision ? { precision } : {}) });
      expect(digest(g)).toBe(BEFORE_FP16.unetLora);
    }
  });
});

/** float16's unit roundoff: a value rounded to a half is off by at most 2^-11 relative. */
const FLOAT16_ROUNDOFF = 2 ** -11;
/**
 * Bound on max |fp16 − fp32| / max |fp32| over an output. Measured on the CPU provider (tiny configs, onnxruntime-node
 * 1.30.0): UNet 8.8e-4, text encoder 6.9e-4, VAE decoder 8.9e-4, i.e. 1.4–1.8 × 2^-11, and 1.5e-3 (3.2 × 2^-11)
 * for the UNet under a strong LoRA: each weight is rounded once (2^-11) and the errors of a few layers in series add
 * up. The CPU provider computes the activations in float32 (it removes the Casts around ops it lacks float16 kernels
 * for; ../onnx/runtime/README.md), so the gap here is the weights' rounding; 8 × 2^-11 leaves 2.5–5× margin for
 * summation-order changes, not for CUDA's activation rounding.
 */
const FP16_GAP_BOUND = 8 * FLOAT16_ROUNDOFF;

function relativeGap(fp16: Float32Array, fp32: Float32Array): number {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < fp32.length; i++) {
    gap = Math.max(gap, Math.abs(fp16[i]! - fp32[i]!));
    scale = Math.max(scale, Math.abs(fp32[i]!));
  }
  return gap / scale;
}

async function outputsOf(graphs: { fp32: Graph; fp16: Graph }, feeds: Record<string, HostTensor>, output: string) {
  const run = async (g: Graph) => {
    const session = await openGraphSession(g);
    const result = (await session.run(feeds))[output]!;
    await session.release();
    return result;
  };
  return { fp32: await run(graphs.fp32), fp16: await run(graphs.fp16) };
}

function expectClose({ fp16, fp32 }: { fp16: Float32Array; fp32: Float32Array }): void {
  expect(fp16.every(Number.isFinite)).toBe(true);
  expect(relativeGap(fp16, fp32)).toBeLessThan(FP16_GAP_BOUND);
}

describe('fp16 graphs', () => {
  const rng = new Pcg32(16, 11);

  it('keep float32 inputs and outputs, and store the weights in half the bytes', () => {
    for (const g of [unetGraph('fp16'), textGraph('fp16'), decoderGraph('fp16')]) {
      for (const name of [...g.inputs, ...g.outputs]) expect(g.value(name).dtype).not.toBe('float16');
    }
    expect(serializeModel(unetGraph('fp16')).byteLength).toBeLessThan(serializeModel(unetGraph('fp32')).byteLength * 0.6);
  });

  it('UNet: finite and within the bound of fp32', async () => {
    const width = unet.plan.config.crossAttentionDim[0]!;
    const feeds = {
      [UNET_INPUTS.sample]: float32Feed([1, 4, 8, 8], fillGaussianFloat32(rng, 4 * 8 * 8)),
      [UNET_INPUTS.timestep]: float32Feed([1], Float32Array.of(981)),
      [UNET_INPUTS.encoderHiddenStates]: float32Feed([1, 77, width], fillGaussianFloat32(rng, 77 * width)),
    };
    expectClose(await outputsOf({ fp32: unetGraph('fp32'), fp16: unetGraph('fp16') }, feeds, UNET_OUTPUT));
  });

  it('UNet with a LoRA on every attention projection: the float32 deltas keep it within the bound', async () => {
    const width = unet.plan.config.crossAttentionDim[0]!;
    const targets = unetAttentionLinears(unet.plan);
    const build = (precision: InferencePrecision) => {
      const g = new Graph('unet');
      const lora = new LoraAdapter(g, targets);
      buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 1, height: 8, width: 8, textLength: 77, adapters: [lora], graph: g, precision });
      return { g, lora };
    };
    const rank = 2;
    // A strong LoRA (B·A entries of order 0.1, as a trained one at scale 1), so the deltas move the output.
    const weights: LoraWeights = {
      scale: 1,
      layers: new Map(targets.map((layer) => [layer.name, { rank, down: fillGaussianFloat32(rng, rank * layer.inFeatures, 0.3), up: fillGaussianFloat32(rng, layer.outFeatures * rank, 0.3) }])),
    };
    const fp32 = build('fp32');
    const feeds: Record<string, HostTensor> = {
      [UNET_INPUTS.sample]: float32Feed([1, 4, 8, 8], fillGaussianFloat32(rng, 4 * 8 * 8)),
      [UNET_INPUTS.timestep]: float32Feed([1], Float32Array.of(500)),
      [UNET_INPUTS.encoderHiddenStates]: float32Feed([1, 77, width], fillGaussianFloat32(rng, 77 * width)),
    };
    for (const [name, feed] of Object.entries(loraFeeds(fp32.lora, weights))) feeds[name] = float32Feed(feed.dims, feed.data);
    const withLora = await outputsOf({ fp32: fp32.g, fp16: build('fp16').g }, feeds, UNET_OUTPUT);
    expectClose(withLora);
    // the LoRA does change the output, so the bound says something about the deltas
    feeds[LORA_SCALE_INPUT] = float32Feed([1], Float32Array.of(0));
    const without = await outputsOf({ fp32: fp32.g, fp16: fp32.g }, feeds, UNET_OUTPUT);
    expect(relativeGap(without.fp32, withLora.fp32)).toBeGreaterThan(10 * FP16_GAP_BOUND);
  });

  it('text encoder: finite and within the bound of fp32 (the causal mask stays float32 lowest)', async () => {
    const last = text.config.vocabSize - 1;
    const ids = BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i < 6 ? 3 + 17 * i : last));
    const feeds = { [CLIP_TEXT_INPUT]: { dtype: 'int64', dims: [1, 77], data: ids } satisfies HostTensor };
    expectClose(await outputsOf({ fp32: textGraph('fp32'), fp16: textGraph('fp16') }, feeds, CLIP_TEXT_OUTPUTS.lastHiddenState));
  });

  it('VAE decoder: finite and within the bound of fp32', async () => {
    const feeds = { [VAE_DECODE.input]: float32Feed([1, 4, 4, 4], fillGaussianFloat32(rng, 4 * 4 * 4)) };
    expectClose(await outputsOf({ fp32: decoderGraph('fp32'), fp16: decoderGraph('fp16') }, feeds, VAE_DECODE.output));
  });

  it('every float16 activation of the tiny UNet stays finite when read out as float16', async () => {
    // The CPU provider computes between float16 nodes in float32 (../onnx/runtime/README.md), so an overflow inside
    // the graph would not show in its output; read every float16 activation out as float16 instead.
    const g = unetGraph('fp16');
    const activations = g.nodes.flatMap((node) => node.outputs).filter((name) => g.value(name).dtype === 'float16');
    for (const name of activations) g.output(g.value(name));
    const width = unet.plan.config.crossAttentionDim[0]!;
    const session = await ort.InferenceSession.create(serializeModel(g), { intraOpNumThreads: 1 });
    try {
      const outputs = await session.run({
        [UNET_INPUTS.sample]: new ort.Tensor('float32', fillGaussianFloat32(rng, 4 * 8 * 8), [1, 4, 8, 8]),
        [UNET_INPUTS.timestep]: new ort.Tensor('float32', Float32Array.of(999), [1]),
        [UNET_INPUTS.encoderHiddenStates]: new ort.Tensor('float32', fillGaussianFloat32(rng, 77 * width), [1, 77, width]),
      });
      const infinite = activations.filter((name) => (outputs[name]!.data as Uint16Array).some((bits) => (bits & 0x7c00) === 0x7c00));
      expect(activations.length).toBeGreaterThan(100);
      expect(infinite).toEqual([]);
    } finally {
      await session.release();
    }
  });
});
