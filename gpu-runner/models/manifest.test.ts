// A real SD 1.5 diffusers folder loads name for name, shape for shape: the inventories derived from the published
// configs must equal the full-size manifests, and the tiny fixtures' checkpoints.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readSafetensorsHeader } from '../io/safetensors.ts';
import { referencePath } from '../../test/fixtures/reference-dir.ts';
import { compareInventory, describeDiff } from './checkpoint/compare.ts';
import { parseClipTextConfig } from './clip-text/config.ts';
import { clipTextInventory, clipTextLinears } from './clip-text/inventory.ts';
import { parameterCount, type ParameterSpec } from './inventory.ts';
import { parseUnetConfig } from './unet/config.ts';
import { unetAttentionLinears, unetInventory } from './unet/inventory.ts';
import { planUnet } from './unet/plan.ts';
import { parseVaeConfig } from './vae/config.ts';
import { renameLegacyVaeKey, vaeInventory } from './vae/inventory.ts';
import { planVae } from './vae/plan.ts';

const manifestSchema = z.object({
  input_config: z.record(z.string(), z.unknown()),
  num_tensors: z.number(),
  num_parameters: z.number(),
  tensors: z.array(z.object({ name: z.string(), shape: z.array(z.number()), dtype: z.string() })),
  legacy_attention_names: z.record(z.string(), z.string()).optional(),
  optional_buffers: z.array(z.object({ name: z.string() })).optional(),
});

function readJson(...parts: string[]): unknown {
  return JSON.parse(readFileSync(referencePath(...parts), 'utf8'));
}

function manifest(file: string) {
  return manifestSchema.parse(readJson('sd15-manifest', file));
}

function expectSameTensors(inventory: ParameterSpec[], actual: { name: string; shape: readonly number[] }[]): void {
  const diff = compareInventory(inventory, actual);
  expect(describeDiff(diff)).toBe('');
  expect(inventory.length).toBe(actual.length);
}

function checkpointTensors(...parts: string[]) {
  return readSafetensorsHeader(referencePath(...parts)).tensors.map((t) => ({ name: t.name, shape: t.shape }));
}

describe('full-size SD 1.5 manifests', () => {
  it('the UNet inventory from the published config is the manifest, name for name and shape for shape', () => {
    const m = manifest('unet_manifest.json');
    const inventory = unetInventory(planUnet(parseUnetConfig(m.input_config)));
    expectSameTensors(inventory, m.tensors);
    expect(inventory.length).toBe(m.num_tensors);
    expect(parameterCount(inventory)).toBe(m.num_parameters);
    // Registration order equals torch's state_dict order.
    expect(inventory.map((spec) => spec.name)).toEqual(m.tensors.map((t) => t.name));
  });

  it('the text encoder inventory is the manifest; the legacy position_ids buffer is listed as optional', () => {
    const m = manifest('text_encoder_manifest.json');
    const inventory = clipTextInventory(parseClipTextConfig(m.input_config));
    expectSameTensors(inventory, m.tensors);
    expect(parameterCount(inventory)).toBe(m.num_parameters);
    expect(inventory.map((spec) => spec.name)).toEqual(m.tensors.map((t) => t.name));
    expect(m.optional_buffers?.map((b) => b.name)).toEqual(['text_model.embeddings.position_ids']);
  });

  it('the VAE inventory is the manifest, and every legacy attention name maps onto it', () => {
    const m = manifest('vae_manifest.json');
    const inventory = vaeInventory(planVae(parseVaeConfig(m.input_config)));
    expectSameTensors(inventory, m.tensors);
    expect(parameterCount(inventory)).toBe(m.num_parameters);
    const legacy = Object.entries(m.legacy_attention_names ?? {});
    expect(legacy.length).toBe(16);
    for (const [current, old] of legacy) {
      expect(renameLegacyVaeKey(old)).toBe(current);
      expect(inventory.some((spec) => spec.name === current)).toBe(true);
    }
  });

  it('reads attention_head_dim as the head COUNT: 8 heads of 40/80/160, and lists the 128 attention projections', () => {
    const plan = planUnet(parseUnetConfig(manifest('unet_manifest.json').input_config));
    const headDims = plan.downBlocks.flatMap((block) => block.attentions.map((a) => a.blocks[0]!.attn1.headDim));
    expect(headDims).toEqual([40, 40, 80, 80, 160, 160]);
    expect(plan.midBlock.attentions[0]!.blocks[0]!.attn2.heads).toBe(8);

    const projections = z
      .object({ count: z.number(), layers: z.array(z.object({ name: z.string(), in_features: z.number(), out_features: z.number(), bias: z.boolean(), heads: z.number(), head_dim: z.number() })) })
      .parse(readJson('sd15-manifest', 'unet_attention_projections.json'));
    const linears = unetAttentionLinears(plan);
    expect(linears.length).toBe(projections.count);
    expect(linears.map((l) => [l.name, l.inFeatures, l.outFeatures, l.bias])).toEqual(
      projections.layers.map((l) => [l.name, l.in_features, l.out_features, l.bias]),
    );
  });

  it('lists the 48 attention and 24 MLP layers of the text encoder as adaptable (200 adapted layers with the UNet)', () => {
    const config = parseClipTextConfig(manifest('text_encoder_manifest.json').input_config);
    const linears = clipTextLinears(config);
    expect(linears.filter((l) => l.kind.startsWith('self_attn')).length).toBe(48);
    expect(linears.filter((l) => l.kind.startsWith('mlp')).length).toBe(24);
  });
});

describe('tiny SD 1.5 fixtures', () => {
  it('the UNet checkpoint matches the inventory of its config', () => {
    const plan = planUnet(parseUnetConfig(readJson('sd15-tiny', 'unet', 'config.json')));
    expectSameTensors(unetInventory(plan), checkpointTensors('sd15-tiny', 'unet', 'diffusion_pytorch_model.safetensors'));
  });

  it('the text encoder checkpoint matches the inventory of its config', () => {
    const config = parseClipTextConfig(readJson('sd15-tiny', 'text_encoder', 'config.json'));
    expectSameTensors(clipTextInventory(config), checkpointTensors('sd15-tiny', 'text_encoder', 'model.safetensors'));
  });

  it('the VAE checkpoint matches the inventory of its config', () => {
    const plan = planVae(parseVaeConfig(readJson('sd15-tiny', 'vae', 'config.json')));
    expectSameTensors(vaeInventory(plan), checkpointTensors('sd15-tiny', 'vae', 'diffusion_pytorch_model.safetensors'));
  });

  it('the LoRA targets are the UNet attention projections', () => {
    const plan = planUnet(parseUnetConfig(readJson('sd15-tiny', 'unet', 'config.json')));
    const targets = z
      .array(z.object({ name: z.string(), in_features: z.number(), out_features: z.number(), bias: z.boolean() }))
      .parse(readJson('sd15-tiny', 'lora', 'targets.json'));
    expect(unetAttentionLinears(plan).map((l) => [l.name, l.inFeatures, l.outFeatures, l.bias])).toEqual(
      targets.map((t) => [t.name, t.in_features, t.out_features, t.bias]),
    );
  });
});

describe('config errors', () => {
  const tinyUnet = () => readJson('sd15-tiny', 'unet', 'config.json') as Record<string, unknown>;

  it('rejects a UNet variant we do not build, naming the option', () => {
    expect(() => parseUnetConfig({ ...tinyUnet(), class_embed_type: 'timestep' })).toThrow(/class_embed_type/);
    expect(() => parseUnetConfig({ ...tinyUnet(), addition_embed_type: 'text_time' })).toThrow(/addition_embed_type/);
    expect(() => parseUnetConfig({ ...tinyUnet(), down_block_types: ['SimpleCrossAttnDownBlock2D'] })).toThrow(/down_block_types/);
  });

  it('rejects per-block lists of the wrong length and widths that GroupNorm cannot split', () => {
    expect(() => parseUnetConfig({ ...tinyUnet(), attention_head_dim: [8, 8] })).toThrow(/attention_head_dim has 2 entries/);
    expect(() => parseUnetConfig({ ...tinyUnet(), norm_num_groups: 3 })).toThrow(/groups/);
  });

  it('expands per-block lists and honours an explicit num_attention_heads', () => {
    const config = parseUnetConfig({ ...tinyUnet(), attention_head_dim: [1, 2, 4, 8], num_attention_heads: null });
    expect(config.numAttentionHeads).toEqual([1, 2, 4, 8]);
    const plan = planUnet(config);
    // Up blocks read the per-block options reversed (unet_2d_condition.py).
    expect(plan.upBlocks.map((b) => b.attentions[0]?.blocks[0]!.attn1.heads ?? null)).toEqual([null, 4, 2, 1]);
    expect(parseUnetConfig({ ...tinyUnet(), num_attention_heads: 2 }).numAttentionHeads).toEqual([2, 2, 2, 2]);
  });
});
