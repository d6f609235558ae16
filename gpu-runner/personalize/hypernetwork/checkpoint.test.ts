import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { parseUnetConfig } from '../../models/unet/config.ts';
import { planUnet } from '../../models/unet/plan.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { adaptedLayers } from '../lidb/adapted-layers.ts';
import { initialHypernetworkCheckpoint } from './initial-checkpoint.ts';
import { serializeSafetensors, type Tensor } from '../../io/safetensors.ts';
import { lidbSettings } from '../lidb/settings.ts';
import { decodeHypernetworkCheckpoint, encodeHypernetworkCheckpoint, importVitWeights } from './checkpoint.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from './config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams, type HeadLayout } from './inventory.ts';

const layers = [
  { name: 'unet.a.attn1.to_q', inFeatures: 8, outFeatures: 8 },
  { name: 'text_encoder.b.mlp.fc1', inFeatures: 32, outFeatures: 128 },
];
const settings = lidbSettings({ auxSeed: 9 });
const heads: HeadLayout[] = layers.map((layer) => {
  const aEff = Math.min(100, layer.inFeatures);
  const bEff = Math.min(50, layer.outFeatures);
  return { layer, aSize: aEff, bSize: bEff, aShape: [1, aEff], bShape: [bEff, 1] };
});
const config = parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG);
const inventory = hypernetworkInventory(config, heads);
const params = initHypernetworkParams(config, inventory, 3);
const names = layers.map((l) => l.name);

describe('hypernetwork checkpoints', () => {
  it('an initial checkpoint for a pack is deterministic and decodes against the pack’s layers', () => {
    const unet = planUnet(parseUnetConfig(JSON.parse(readFileSync(referencePath('sd15-tiny', 'unet', 'config.json'), 'utf8'))));
    const textEncoder = parseClipTextConfig(JSON.parse(readFileSync(referencePath('sd15-tiny', 'text_encoder', 'config.json'), 'utf8')));
    const bytes = initialHypernetworkCheckpoint({ unet, textEncoder }, { seed: 4 });
    expect(initialHypernetworkCheckpoint({ unet, textEncoder }, { seed: 4 })).toEqual(bytes);
    const layers = adaptedLayers({ unet, textEncoder });
    const back = decodeHypernetworkCheckpoint(bytes, layers.map((l) => l.name), (c, lidb) => hypernetworkInventory(c, headLayouts(layers, lidb)));
    expect(back.info.trained).toBe('false');
    expect(back.params.get(`heads.${layers.length - 1}.weight`)).toBeDefined();
  });

  it('round-trip every parameter with config, LiDB settings and training info', () => {
    const bytes = encodeHypernetworkCheckpoint({ config, lidb: settings, selection: { unet: ['attn1.to_q'], textEncoder: ['mlp.fc1'] }, layerNames: names, params, info: { step: '12' } }, inventory);
    const back = decodeHypernetworkCheckpoint(bytes, names, (c) => hypernetworkInventory(c, heads));
    expect(back.config).toEqual(config);
    expect(back.lidb).toEqual(settings);
    expect(back.info.step).toBe('12');
    for (const { name } of inventory) expect(back.params.get(name)).toEqual(params.get(name));
    expect(() => decodeHypernetworkCheckpoint(bytes, [...names].reverse(), (c) => hypernetworkInventory(c, heads))).toThrow(/another order/);
  });

  it('imports a ViT encoder from timm and open_clip names', () => {
    const encoderSpecs = inventory.filter((p) => p.name.startsWith('encoder.'));
    const timm: Record<string, Tensor> = { 'head.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } };
    for (const { name, shape } of encoderSpecs) timm[name.replace(/^encoder\./, '')] = { dtype: 'F32', shape: [...shape], data: params.get(name)! };
    const fromTimm = importVitWeights(serializeSafetensors(timm), 'timm', inventory, config.encoder);
    for (const { name } of encoderSpecs) expect(fromTimm.get(name)).toEqual(params.get(name));

    const width = config.encoder.width;
    const openClip: Record<string, Tensor> = {
      'visual.conv1.weight': { dtype: 'F32', shape: [width, 3, 8, 8], data: params.get('encoder.patch_embed.proj.weight')! },
      'visual.class_embedding': { dtype: 'F32', shape: [width], data: params.get('encoder.cls_token')! },
      'visual.positional_embedding': { dtype: 'F32', shape: [17, width], data: params.get('encoder.pos_embed')! },
      'visual.ln_post.weight': { dtype: 'F32', shape: [width], data: params.get('encoder.norm.weight')! },
      'visual.ln_post.bias': { dtype: 'F32', shape: [width], data: params.get('encoder.norm.bias')! },
      'visual.proj': { dtype: 'F32', shape: [width, 4], data: new Float32Array(width * 4) },
    };
    const mapping: Record<string, string> = { norm1: 'ln_1', norm2: 'ln_2', 'attn.qkv.weight': 'attn.in_proj_weight', 'attn.qkv.bias': 'attn.in_proj_bias', 'attn.proj': 'attn.out_proj', 'mlp.fc1': 'mlp.c_fc', 'mlp.fc2': 'mlp.c_proj' };
    for (const { name, shape } of encoderSpecs.filter((p) => p.name.startsWith('encoder.blocks.'))) {
      let rest = name.replace(/^encoder\.blocks\.(\d+)\./, '');
      const block = /^encoder\.blocks\.(\d+)\./.exec(name)![1];
      for (const [ours, theirs] of Object.entries(mapping)) if (rest.startsWith(ours)) rest = theirs + rest.slice(ours.length);
      openClip[`visual.transformer.resblocks.${block}.${rest}`] = { dtype: 'F32', shape: [...shape], data: params.get(name)! };
    }
    const fromOpenClip = importVitWeights(serializeSafetensors(openClip), 'open_clip', inventory, config.encoder);
    for (const { name } of encoderSpecs.filter((p) => p.name !== 'encoder.patch_embed.proj.bias')) expect(fromOpenClip.get(name)).toEqual(params.get(name));
    expect(fromOpenClip.get('encoder.patch_embed.proj.bias')!.every((v) => v === 0)).toBe(true);
    delete openClip['visual.ln_post.bias'];
    expect(() => importVitWeights(serializeSafetensors(openClip), 'open_clip', inventory, config.encoder)).toThrow(/lacks 1 encoder tensors/);
  });
});
