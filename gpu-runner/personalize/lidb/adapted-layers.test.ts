import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseClipTextConfig } from '../../models/clip-text/config.ts';
import { parseUnetConfig } from '../../models/unet/config.ts';
import { planUnet } from '../../models/unet/plan.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { adaptedLayers, trainableCount } from './adapted-layers.ts';

function manifestConfig(file: string): unknown {
  const manifest = JSON.parse(readFileSync(referencePath('sd15-manifest', file), 'utf8')) as { input_config: unknown };
  return manifest.input_config;
}

const SD15_LAYER_ORDER_SHA256 = 'f117e7ffd80ec92d2519998a94d41380b9ae43d60f9ae6523f1163155d20742a';

const sd15 = {
  unet: planUnet(parseUnetConfig(manifestConfig('unet_manifest.json'))),
  textEncoder: parseClipTextConfig(manifestConfig('text_encoder_manifest.json')),
};

describe('adapted layers', () => {
  it('are SD 1.5’s 200 by default: 128 UNet attention projections + 48 CLIP attention + 24 CLIP MLP, 30,000 numbers', () => {
    const layers = adaptedLayers(sd15);
    expect(layers).toHaveLength(200);
    expect(layers.filter((l) => l.component === 'unet')).toHaveLength(128);
    expect(layers.filter((l) => l.kind.startsWith('self_attn'))).toHaveLength(48);
    expect(layers.filter((l) => l.kind.startsWith('mlp'))).toHaveLength(24);
    expect(layers.reduce((sum, l) => sum + trainableCount(l, 100, 50, 1), 0)).toBe(30_000);
    expect(new Set(layers.map((l) => l.name)).size).toBe(200);
  });

  it('match the reference list of UNet attention projections name for name, shape for shape, in order', () => {
    const reference = JSON.parse(readFileSync(referencePath('sd15-manifest', 'unet_attention_projections.json'), 'utf8')) as {
      layers: { name: string; in_features: number; out_features: number }[];
    };
    const unet = adaptedLayers({ unet: sd15.unet });
    expect(unet.map((l) => [l.modulePath, l.inFeatures, l.outFeatures])).toEqual(
      reference.layers.map((l) => [l.name, l.in_features, l.out_features]),
    );
  });

  it('have a stable documented order: UNet first, then the text encoder', () => {
    const names = adaptedLayers(sd15).map((l) => l.name);
    expect(names[0]).toBe('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q');
    expect(names[119]).toBe('unet.up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0');
    expect(names[127]).toBe('unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0');
    // LIDB.md pins the whole order by this hash of the names joined with '\n'.
    expect(createHash('sha256').update(names.join('\n')).digest('hex')).toBe(SD15_LAYER_ORDER_SHA256);
    expect(names.slice(128, 134)).toEqual([
      'text_encoder.text_model.encoder.layers.0.self_attn.k_proj',
      'text_encoder.text_model.encoder.layers.0.self_attn.v_proj',
      'text_encoder.text_model.encoder.layers.0.self_attn.q_proj',
      'text_encoder.text_model.encoder.layers.0.self_attn.out_proj',
      'text_encoder.text_model.encoder.layers.0.mlp.fc1',
      'text_encoder.text_model.encoder.layers.0.mlp.fc2',
    ]);
  });

  it('is a setting: a subset of kinds keeps the order', () => {
    const layers = adaptedLayers(sd15, { unet: ['attn2.to_k', 'attn2.to_v'], textEncoder: [] });
    expect(layers).toHaveLength(32);
    expect(layers.every((l) => l.inFeatures === 768)).toBe(true);
    expect(() => adaptedLayers(sd15, { unet: ['attn3.to_q' as never] })).toThrow();
  });
});
