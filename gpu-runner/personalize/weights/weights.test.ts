import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, toFloat32 } from '../../io/safetensors.ts';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { parseUnetConfig } from '../../models/unet/config.ts';
import { planUnet } from '../../models/unet/plan.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { type AdaptedLayer, adaptedLayers, adaptedLayerSelectionSchema } from '../lidb/adapted-layers.ts';
import { auxBases } from '../lidb/aux-bases.ts';
import { lidbDelta, loraDelta, type LoraFactors } from '../lidb/delta.ts';
import { lidbSettings } from '../lidb/settings.ts';
import { exportLora } from './lora-export.ts';
import { importLora } from './lora-import.ts';
import { kohyaModuleKey } from './lora-names.ts';
import { decodeNativeWeights, encodeNativeWeights, type BaseModelStructure } from './native-format.ts';
import type { PersonalizedWeights, RelaxTerm } from './personalized-weights.ts';

/**
 * The budget for SD 1.5's default LiDB file at fp16 (docs/targets.md): 60 KB (read as KiB; the 30,000 fp16 numbers
 * alone are 60,000 B).
 */
const SD15_FP16_FILE_LIMIT_BYTES = 60 * 1024;

function json(...parts: string[]): unknown {
  return JSON.parse(readFileSync(referencePath(...parts), 'utf8'));
}
const manifestConfig = (file: string) => (json('sd15-manifest', file) as { input_config: unknown }).input_config;

const sd15: BaseModelStructure = {
  unet: planUnet(parseUnetConfig(manifestConfig('unet_manifest.json'))),
  textEncoder: parseClipTextConfig(manifestConfig('text_encoder_manifest.json')),
};
const tiny: BaseModelStructure = {
  unet: planUnet(parseUnetConfig(json('sd15-tiny', 'unet', 'config.json'))),
  textEncoder: parseClipTextConfig(json('sd15-tiny', 'text_encoder', 'config.json')),
};

function randomWeights(
  layers: AdaptedLayer[],
  options: { seed: number; relax?: 'lora' | 'lidb'; relaxRank?: number; std?: number },
): PersonalizedWeights {
  const settings = lidbSettings({ auxSeed: 17 });
  const std = options.std ?? 0.05;
  const draw = (name: string, n: number) => fillGaussianFloat32(namedRng(options.seed, name), n, std);
  const lidb = layers.map((l) => ({
    aTrain: draw(`${l.name}/a`, settings.r * Math.min(settings.a, l.inFeatures)),
    bTrain: draw(`${l.name}/b`, Math.min(settings.b, l.outFeatures) * settings.r),
  }));
  const rank = options.relaxRank ?? 4;
  let relax: RelaxTerm | undefined;
  if (options.relax === 'lidb') {
    relax = {
      mode: 'lidb',
      rank,
      factors: layers.map((l) => ({
        aTrain: draw(`${l.name}/ra`, rank * Math.min(settings.a, l.inFeatures)),
        bTrain: draw(`${l.name}/rb`, Math.min(settings.b, l.outFeatures) * rank),
      })),
    };
  } else if (options.relax === 'lora') {
    relax = {
      mode: 'lora',
      rank,
      factors: layers.map((l): LoraFactors => ({ rank, down: draw(`${l.name}/rd`, rank * l.inFeatures), up: draw(`${l.name}/ru`, l.outFeatures * rank) })),
    };
  }
  return {
    settings,
    selection: adaptedLayerSelectionSchema.parse({}),
    layers,
    lidb,
    ...(relax ? { relax } : {}),
    meta: { baseModelId: 'runwayml/stable-diffusion-v1-5', baseModelSha256: 'ab'.repeat(32), method: 'hyperdreambooth', steps: 40 },
  };
}

function maxAbsDiff(x: Float32Array, y: Float32Array): number {
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}
function maxAbs(x: Float32Array): number {
  return x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

describe('native weight file', () => {
  it('holds SD 1.5’s 200 default LiDB layers in ≤ 60 KB at fp16 (and about twice that at fp32)', () => {
    const weights = randomWeights(adaptedLayers(sd15), { seed: 1 });
    const f16 = encodeNativeWeights(weights, 'F16');
    const f32 = encodeNativeWeights(weights, 'F32');
    expect(f16.byteLength).toBeLessThanOrEqual(SD15_FP16_FILE_LIMIT_BYTES);
    expect(f32.byteLength).toBeLessThan(2 * SD15_FP16_FILE_LIMIT_BYTES + 2048);
    const back = decodeNativeWeights(f16, sd15);
    expect(back.layers).toHaveLength(200);
    expect(maxAbsDiff(back.lidb![199]!.aTrain, weights.lidb![199]!.aTrain)).toBeLessThan(1e-3 * 0.25);
  });

  it('round-trips at fp32 exactly, with its metadata and either relax term', () => {
    const layers = adaptedLayers(tiny);
    for (const relax of ['lora', 'lidb', undefined] as const) {
      const weights = randomWeights(layers, { seed: 2, ...(relax ? { relax } : {}) });
      const back = decodeNativeWeights(encodeNativeWeights(weights, 'F32'), tiny);
      expect(back.meta).toEqual(weights.meta);
      expect(back.settings).toEqual(weights.settings);
      expect(back.layers.map((l) => l.name)).toEqual(layers.map((l) => l.name));
      expect(back.lidb).toEqual(weights.lidb);
      expect(back.relax).toEqual(weights.relax);
    }
  });

  it('refuses a file for another base model, and bytes that are not a weight file, with clear errors', () => {
    const bytes = encodeNativeWeights(randomWeights(adaptedLayers(tiny), { seed: 3 }), 'F16');
    expect(() => decodeNativeWeights(bytes, sd15)).toThrow(/wrong base model/);
    expect(() => decodeNativeWeights(new Uint8Array([1, 2, 3]), tiny)).toThrow(/not a readable safetensors/);
    expect(() => decodeNativeWeights(bytes.subarray(0, bytes.length - 10), tiny)).toThrow(/weight file/);
  });
});

describe('LoRA export and import', () => {
  const layers = adaptedLayers(tiny);
  const bases = auxBases(layers, lidbSettings({ auxSeed: 17 }));

  function expectedDelta(weights: PersonalizedWeights, i: number): Float32Array {
    const basis = bases[i]!;
    const delta = lidbDelta(basis, weights.lidb![i]!, weights.settings.r);
    const relax = weights.relax;
    const extra = relax?.mode === 'lidb'
      ? lidbDelta(basis, relax.factors[i]!, relax.rank)
      : relax?.mode === 'lora'
        ? loraDelta(relax.factors[i]!, basis.layer.outFeatures, basis.layer.inFeatures)
        : undefined;
    if (extra) for (let k = 0; k < delta.length; k++) delta[k] = delta[k]! + extra[k]!;
    return delta;
  }

  for (const format of ['kohya', 'peft'] as const) {
    for (const relax of ['lora', 'lidb'] as const) {
      it(`${format} with a ${relax} relax term reproduces every layer’s ΔW (fp32 ≤ 1e-6 relative, fp16 ≤ 2e-3)`, () => {
        const weights = randomWeights(layers, { seed: 4, relax, relaxRank: 3 });
        for (const [dtype, tolerance] of [['F32', 1e-6], ['F16', 2e-3]] as const) {
          const imported = importLora(exportLora(weights, bases, format, dtype), layers);
          expect(imported.format).toBe(format);
          expect(imported.layers).toHaveLength(layers.length);
          imported.layers.forEach((entry, i) => {
            expect(entry.layer.name).toBe(layers[i]!.name);
            expect(entry.lora.rank).toBe(weights.settings.r + 3);
            const delta = loraDelta(entry.lora, entry.layer.outFeatures, entry.layer.inFeatures, entry.scale);
            const expected = expectedDelta(weights, i);
            expect(maxAbsDiff(delta, expected)).toBeLessThanOrEqual(tolerance * maxAbs(expected));
          });
        }
      });
    }
  }

  it('uses the kohya and PEFT key names other tools expect', () => {
    const weights = randomWeights(layers, { seed: 5 });
    const kohya = importLora(exportLora(weights, bases, 'kohya', 'F32'), layers);
    expect(kohya.layers[0]!.scale).toBe(1);
    expect(kohyaModuleKey(layers[0]!)).toBe('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
    const te = layers.find((l) => l.name.endsWith('layers.0.self_attn.q_proj'))!;
    expect(kohyaModuleKey(te)).toBe('lora_te_text_model_encoder_layers_0_self_attn_q_proj');
    const out = layers.find((l) => l.modulePath.endsWith('attn2.to_out.0'))!;
    expect(kohyaModuleKey(out)).toMatch(/_attn2_to_out_0$/);
  });

  it('imports the reference PEFT LoRA (rank 4, alpha 2) and merges it as diffusers does', () => {
    const imported = importLora(readFileSync(referencePath('sd15-tiny', 'lora', 'lora_rank4.safetensors')), adaptedLayers({ unet: tiny.unet! }));
    expect(imported.layers).toHaveLength(80);
    expect(imported.layers[0]!.scale).toBe(0.5);
    const io = loadSafetensors(referencePath('sd15-tiny', 'lora', 'io.safetensors')).tensors;
    const base = loadSafetensors(referencePath('sd15-tiny', 'unet', 'diffusion_pytorch_model.safetensors')).tensors;
    for (const module of ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k', 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k']) {
      const entry = imported.layers.find((l) => l.layer.modulePath === module)!;
      const merged = Float32Array.from(toFloat32(base.get(`${module}.weight`)!));
      const delta = loraDelta(entry.lora, entry.layer.outFeatures, entry.layer.inFeatures, entry.scale);
      for (let k = 0; k < merged.length; k++) merged[k] = merged[k]! + delta[k]!;
      expect(maxAbsDiff(merged, toFloat32(io.get(`rank4.example_merged.${module}.weight`)!))).toBeLessThan(1e-6);
    }
  });

  it('rejects LoRA files for modules the base model does not have', () => {
    const bytes = exportLora(randomWeights(layers, { seed: 6 }), bases, 'kohya');
    const onlyUnet = adaptedLayers({ unet: tiny.unet! });
    expect(() => importLora(bytes, onlyUnet)).toThrow(/"lora_te_text_model_encoder_layers_\d+_\w+" is not an adapted layer of this base model/);
    expect(() => importLora(new Uint8Array(16), layers)).toThrow(/LoRA import/);
  });
});
