// Properties of the graph builders beyond fixture parity: they read exactly their inventory, weights can stay in the
// safetensors file (fp32 or fp16), adapters see every adaptable layer, and upsampling matches torch on odd sizes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, toFloat32, writeSafetensors } from '../io/safetensors.ts';
import { Graph, grad, mseLoss, saveModel, timestepFrequencies, upsampleNearestTo, type Value } from '../onnx/index.ts';
import { maxAbsDiff } from '../parity/check.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { LoraAdapter, loraFeeds } from './adapters/lora.ts';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from './checkpoint/diffusers-folder.ts';
import { stageWeightsFile } from './checkpoint/staging.ts';
import { ModelWeights } from './checkpoint/weights.ts';
import { buildClipTextGraph } from './clip-text/build.ts';
import { parseClipTextConfig } from './clip-text/config.ts';
import { clipTextInventory, clipTextLinears } from './clip-text/inventory.ts';
import type { AdaptableLinear } from './inventory.ts';
import type { LinearAdapter } from './layers.ts';
import { externalParams, inlineParams, mapParams, placeholderParams } from './params.ts';
import { float32Feed, openGraphSession } from './session.ts';
import { buildUnetGraph } from './unet/build.ts';
import { parseUnetConfig } from './unet/config.ts';
import { unetAttentionLinears, unetInventory } from './unet/inventory.ts';
import { planUnet } from './unet/plan.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae/build.ts';
import { parseVaeConfig } from './vae/config.ts';
import { vaeInventory } from './vae/inventory.ts';
import { planVae } from './vae/plan.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-builders-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const tiny = (component: string) => referencePath('sd15-tiny', component);
const sorted = (names: readonly string[]) => [...names].sort();

/** Records the layers a builder offers to adapters, changing nothing. */
class RecordingAdapter implements LinearAdapter {
  readonly seen: string[] = [];
  delta(layer: AdaptableLinear): Value | undefined {
    this.seen.push(layer.name);
    return undefined;
  }
}

describe('builders read exactly their inventory', () => {
  it('tiny UNet, text encoder, VAE encoder + decoder', () => {
    const unet = openUnetFolder(tiny('unet'));
    const { builder } = buildUnetGraph(unet.plan, placeholderParams(), { batch: 1, height: 8, width: 8, textLength: 77 });
    expect(sorted(builder.used)).toEqual(sorted(unet.weights.names));

    const text = openTextEncoderFolder(tiny('text_encoder'));
    expect(sorted(buildClipTextGraph(text.config, placeholderParams(), { batch: 1, length: 77 }).builder.used)).toEqual(sorted(text.weights.names));

    const vae = openVaeFolder(tiny('vae'));
    const encoder = buildVaeEncoderGraph(vae.plan, placeholderParams(), { batch: 1, height: 16, width: 16 }).builder.used;
    const decoder = buildVaeDecoderGraph(vae.plan, placeholderParams(), { batch: 1, height: 2, width: 2 }).builder.used;
    expect(sorted([...encoder, ...decoder])).toEqual(sorted(vaeInventory(vae.plan).map((s) => s.name)));
  });

  it('the full-size SD 1.5 UNet, text encoder and VAE (structure only, no weights allocated)', () => {
    const manifest = (file: string) => JSON.parse(loadJson(referencePath('sd15-manifest', file))).input_config as unknown;
    const plan = planUnet(parseUnetConfig(manifest('unet_manifest.json')));
    const { builder } = buildUnetGraph(plan, placeholderParams(), { batch: 1, height: 64, width: 64, textLength: 77 });
    expect(sorted(builder.used)).toEqual(sorted(unetInventory(plan).map((s) => s.name)));
    const config = parseClipTextConfig(manifest('text_encoder_manifest.json'));
    expect(sorted(buildClipTextGraph(config, placeholderParams(), { batch: 1, length: 77 }).builder.used)).toEqual(
      sorted(clipTextInventory(config).map((s) => s.name)),
    );
    const vae = planVae(parseVaeConfig(manifest('vae_manifest.json')));
    const encoder = buildVaeEncoderGraph(vae, placeholderParams(), { batch: 1, height: 512, width: 512 });
    const decoder = buildVaeDecoderGraph(vae, placeholderParams(), { batch: 1, height: 64, width: 64 });
    expect(sorted([...encoder.builder.used, ...decoder.builder.used])).toEqual(sorted(vaeInventory(vae).map((s) => s.name)));
    expect(decoder.graph.value('sample').staticShape).toEqual([1, 3, 512, 512]);
  });
});

function loadJson(path: string): string {
  return readFileSync(path, 'utf8');
}

describe('adapters', () => {
  it('are offered every UNet attention projection and every CLIP attention/MLP layer, by checkpoint name', () => {
    const unet = openUnetFolder(tiny('unet'));
    const unetRecorder = new RecordingAdapter();
    buildUnetGraph(unet.plan, placeholderParams(), { batch: 1, height: 8, width: 8, textLength: 77, adapters: [unetRecorder] });
    const attention = unetAttentionLinears(unet.plan).map((l) => l.name);
    expect(unetRecorder.seen).toEqual(expect.arrayContaining(attention));

    const text = openTextEncoderFolder(tiny('text_encoder'));
    const textRecorder = new RecordingAdapter();
    buildClipTextGraph(text.config, placeholderParams(), { batch: 1, length: 77, adapters: [textRecorder] });
    expect(sorted(textRecorder.seen)).toEqual(sorted(clipTextLinears(text.config).map((l) => l.name)));
  });

  it('a LoRA graph with zero scale is the base model, and every target got inputs', async () => {
    const unet = openUnetFolder(tiny('unet'));
    const io = loadSafetensors(join(tiny('unet'), 'io.safetensors')).tensors;
    const feed = (name: string) => float32Feed(io.get(name)!.shape, toFloat32(io.get(name)!));
    const graph = new Graph('unet_lora');
    const adapter = new LoraAdapter(graph, unetAttentionLinears(unet.plan), 2);
    buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 2, height: 8, width: 8, textLength: 77, adapters: [adapter], graph });
    expect(adapter.unusedTargets()).toEqual([]);
    expect(adapter.inputs.length).toBe(80);
    const session = await openGraphSession(graph, { threads: 1 });
    const random = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
    const weights = {
      scale: 0,
      layers: new Map(adapter.inputs.map(({ layer }) => [layer.name, { rank: 2, down: random(2 * layer.inFeatures), up: random(2 * layer.outFeatures) }])),
    };
    const lora = Object.fromEntries(Object.entries(loraFeeds(adapter, weights)).map(([k, v]) => [k, float32Feed(v.dims, v.data)]));
    const inputs = { sample: feed('case1.sample'), timestep: feed('case1.timestep'), encoder_hidden_states: feed('case1.encoder_hidden_states') };
    const base = (await session.run({ ...lora, ...inputs })).out_sample!;
    expect(maxAbsDiff(base, toFloat32(io.get('case1.out_sample')!))).toBeLessThan(1e-5);
    lora.lora_scale = float32Feed([1], Float32Array.of(1));
    const adapted = (await session.run({ ...lora, ...inputs })).out_sample!;
    expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-3);
    await session.release();
  });
});

describe('LoRA on the text encoder', () => {
  it('LoRA inputs on attention and MLP layers equal the merged weights W + scale·B·A', async () => {
    const text = openTextEncoderFolder(tiny('text_encoder'));
    const targets = clipTextLinears(text.config);
    const base = text.weights.readAllFloat32();
    const wave = (n: number, phase: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 7.31 + phase) * 0.2);
    const rank = 3;
    const scale = 0.75;
    const layers = new Map(targets.map((layer, k) => [layer.name, { rank, down: wave(rank * layer.inFeatures, k), up: wave(rank * layer.outFeatures, k + 50) }]));

    const merged = new Map(base);
    for (const layer of targets) {
      const { down, up } = layers.get(layer.name)!;
      const w = Float32Array.from(base.get(`${layer.name}.weight`)!);
      for (let o = 0; o < layer.outFeatures; o++)
        for (let i = 0; i < layer.inFeatures; i++)
          for (let r = 0; r < rank; r++) w[o * layer.inFeatures + i]! += scale * up[o * rank + r]! * down[r * layer.inFeatures + i]!;
      merged.set(`${layer.name}.weight`, w);
    }
    const ids = loadSafetensors(join(tiny('text_encoder'), 'io.safetensors')).tensors.get('input_ids')!;
    const idsFeed = { input_ids: { dtype: 'int64' as const, dims: ids.shape, data: ids.data as BigInt64Array } };
    const [batch, length] = ids.shape as [number, number];

    const mergedSession = await openGraphSession(buildClipTextGraph(text.config, mapParams(merged), { batch, length }).graph, { threads: 1 });
    const expected = (await mergedSession.run(idsFeed)).last_hidden_state!;
    await mergedSession.release();

    const graph = new Graph('text_lora');
    const adapter = new LoraAdapter(graph, targets);
    buildClipTextGraph(text.config, mapParams(base), { batch, length, adapters: [adapter], graph });
    const session = await openGraphSession(graph, { threads: 1 });
    const lora = Object.fromEntries(Object.entries(loraFeeds(adapter, { scale, layers })).map(([k, v]) => [k, float32Feed(v.dims, v.data)]));
    const actual = (await session.run({ ...idsFeed, ...lora })).last_hidden_state!;
    const unchanged = (await session.run({ ...idsFeed, ...lora, lora_scale: float32Feed([1], Float32Array.of(0)) })).last_hidden_state!;
    await session.release();
    expect(adapter.inputs.length).toBe(targets.length);
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-4);
    expect(maxAbsDiff(unchanged, expected)).toBeGreaterThan(1e-2);
  });
});

describe('training through the UNet', () => {
  it('the engine differentiates the LoRA-adapted UNet; the gradient matches finite differences along a direction', async () => {
    const unet = openUnetFolder(tiny('unet'));
    const io = loadSafetensors(join(tiny('unet'), 'io.safetensors')).tensors;
    const feed = (name: string) => float32Feed(io.get(name)!.shape, toFloat32(io.get(name)!));
    const g = new Graph('unet_lora_train');
    const adapter = new LoraAdapter(g, unetAttentionLinears(unet.plan), 2);
    const { output } = buildUnetGraph(unet.plan, inlineParams(unet.weights), { batch: 2, height: 8, width: 8, textLength: 77, adapters: [adapter], graph: g });
    const loss = mseLoss(output, g.input('target', 'float32', [2, 4, 8, 8]));
    const wrt = adapter.inputs.flatMap((input) => [input.down, input.up]);
    const train = grad(g, { loss, wrt });

    const wave = (n: number, phase: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + phase) * 0.3);
    const weights = {
      scale: 1,
      layers: new Map(adapter.inputs.map(({ layer }, k) => [layer.name, { rank: 2, down: wave(2 * layer.inFeatures, k), up: wave(2 * layer.outFeatures, k + 100) }])),
    };
    const feeds: Record<string, ReturnType<typeof float32Feed>> = {
      sample: feed('case1.sample'),
      timestep: feed('case1.timestep'),
      encoder_hidden_states: feed('case1.encoder_hidden_states'),
      target: feed('case1.out_sample'),
    };
    for (const [name, t] of Object.entries(loraFeeds(adapter, weights))) feeds[name] = float32Feed(t.dims, t.data);
    const direction = new Map(wrt.map((name, k) => [name, wave(feeds[name]!.data.length, 7 * k + 1)]));

    const trainSession = await openGraphSession(train, { threads: 1 });
    const gradients = await trainSession.run(feeds);
    await trainSession.release();
    let analytic = 0;
    for (const name of wrt) {
      const gradient = gradients[`grad.${name}`]!;
      const d = direction.get(name)!;
      for (let i = 0; i < d.length; i++) analytic += gradient[i]! * d[i]!;
    }

    const forward = await openGraphSession(g, { threads: 1 });
    const lossAlong = async (step: number) => {
      const moved = { ...feeds };
      for (const name of wrt) {
        const values = feeds[name]!.data as Float32Array;
        moved[name] = float32Feed(feeds[name]!.dims, values.map((v, i) => v + step * direction.get(name)![i]!));
      }
      const prediction = (await forward.run(moved)).out_sample!;
      const target = feeds.target!.data as Float32Array;
      return prediction.reduce((sum, v, i) => sum + (v - target[i]!) ** 2, 0) / prediction.length;
    };
    const h = 1e-2;
    const numeric = ((await lossAlong(h)) - (await lossAlong(-h))) / (2 * h);
    await forward.release();
    expect(Math.abs(analytic)).toBeGreaterThan(1e-4);
    expect(Math.abs(analytic - numeric)).toBeLessThan(0.02 * Math.abs(numeric));
  });
});

describe('weights as external data inside the safetensors file', () => {
  let reference: Float32Array;
  let inputs: Record<string, ReturnType<typeof float32Feed>>;
  beforeAll(() => {
    const io = loadSafetensors(join(tiny('unet'), 'io.safetensors')).tensors;
    const feed = (name: string) => float32Feed(io.get(name)!.shape, toFloat32(io.get(name)!));
    inputs = { sample: feed('case2.sample'), timestep: feed('case2.timestep'), encoder_hidden_states: feed('case2.encoder_hidden_states') };
    reference = toFloat32(io.get('case2.out_sample')!);
  });

  async function runSaved(weightsFile: string, label: string): Promise<Float32Array> {
    const modelDir = join(scratch, label);
    const staged = stageWeightsFile(weightsFile, modelDir, 'unet.safetensors');
    const plan = openUnetFolder(tiny('unet')).plan;
    const weights = ModelWeights.open([staged], unetInventory(plan));
    const { graph } = buildUnetGraph(plan, externalParams(weights, modelDir), { batch: 1, height: 8, width: 16, textLength: 77 });
    const path = saveModel(graph, modelDir, 'unet.onnx');
    const session = await openGraphSession(path, { threads: 1 });
    try {
      return (await session.run(inputs)).out_sample!;
    } finally {
      await session.release();
    }
  }

  it('fp32: the checkpoint staged in the model folder (hard link, else a copy), same output', async () => {
    const out = await runSaved(join(tiny('unet'), 'diffusion_pytorch_model.safetensors'), 'fp32');
    expect(maxAbsDiff(out, reference)).toBeLessThan(1e-5);
  });

  it('fp16: stored half precision, widened by a Cast in the graph', async () => {
    const { tensors } = loadSafetensors(join(tiny('unet'), 'diffusion_pytorch_model.safetensors'));
    const half = new Map<string, Tensor>();
    for (const [name, t] of tensors) half.set(name, { dtype: 'F16', shape: t.shape, data: float32ToFloat16Bits(t.data as Float32Array) });
    const file = join(scratch, 'unet.fp16.safetensors');
    writeSafetensors(file, half);
    const out = await runSaved(file, 'fp16');
    const error = maxAbsDiff(out, reference);
    // fp16 rounding of every weight (relative 2^-11) moves the output a little, never a lot.
    expect(error).toBeGreaterThan(0);
    expect(error).toBeLessThan(2e-2);
  });
});

describe('timesteps and upsampling as torch computes them', () => {
  it('timestep frequencies are float32 exp(−ln(10000)·i/half)', () => {
    const freqs = timestepFrequencies(320, 0);
    expect(freqs[0]).toBe(1);
    expect(freqs[159]).toBeCloseTo(Math.exp((-Math.log(10000) * 159) / 160), 7);
  });

  it('nearest upsampling to an odd skip size equals torch interpolate(size=…) (src = floor(dst·in/out))', async () => {
    const g = new Graph('upsample');
    const [h, w, th, tw] = [4, 5, 7, 10];
    const x = g.input('x', 'float32', [1, 2, h, w]);
    g.output(upsampleNearestTo(x, th, tw), 'y');
    const data = Float32Array.from({ length: 2 * h * w }, (_, i) => i);
    const session = await openGraphSession(g, { threads: 1 });
    const y = (await session.run({ x: float32Feed([1, 2, h, w], data) })).y!;
    await session.release();
    const expected = new Float32Array(2 * th * tw);
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < th; i++)
        for (let j = 0; j < tw; j++) expected[(c * th + i) * tw + j] = data[(c * h + Math.floor((i * h) / th)) * w + Math.floor((j * w) / tw)]!;
    expect(Array.from(y)).toEqual(Array.from(expected));
  });

  it('a UNet on latents whose sides are not multiples of 8 builds with matching skip shapes', () => {
    const plan = planUnet(parseUnetConfig(JSON.parse(loadJson(join(tiny('unet'), 'config.json')))));
    const { output } = buildUnetGraph(plan, placeholderParams(), { batch: 1, height: 7, width: 13, textLength: 77 });
    expect(output.staticShape).toEqual([1, 4, 7, 13]);
  });
});
