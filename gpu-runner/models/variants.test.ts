// Configs other than the dev fixtures' (hidden fixture sets use other widths, depths and shapes): the builders follow
// the config, read exactly its inventory, and run to outputs of the right shape. Random weights, no reference values.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeRandomCheckpoint } from './checkpoint/random-weights.ts';
import { ModelWeights } from './checkpoint/weights.ts';
import { buildClipTextGraph, CLIP_TEXT_OUTPUTS } from './clip-text/build.ts';
import { parseClipTextConfig } from './clip-text/config.ts';
import { clipTextInventory } from './clip-text/inventory.ts';
import type { ParameterSpec } from './inventory.ts';
import { inlineParams } from './params.ts';
import { float32Feed, openGraphSession } from './session.ts';
import { buildUnetGraph } from './unet/build.ts';
import { parseUnetConfig } from './unet/config.ts';
import { unetInventory } from './unet/inventory.ts';
import { planUnet } from './unet/plan.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae/build.ts';
import { parseVaeConfig } from './vae/config.ts';
import { vaeInventory } from './vae/inventory.ts';
import { planVae } from './vae/plan.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-variants-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function randomWeights(name: string, inventory: ParameterSpec[]): ModelWeights {
  const path = join(scratch, `${name}.safetensors`);
  writeRandomCheckpoint(path, inventory, 3);
  return ModelWeights.open([path], inventory);
}

const wave = (n: number, phase = 0) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase));
const sorted = (names: readonly string[]) => [...names].sort();

describe('UNet variants', () => {
  it('three levels, two resnets and two transformer layers per block, per-block heads, linear projections, 6×10 latents', async () => {
    const plan = planUnet(
      parseUnetConfig({
        block_out_channels: [16, 32, 32],
        down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
        up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
        layers_per_block: 2,
        transformer_layers_per_block: 2,
        attention_head_dim: [2, 4, 8],
        cross_attention_dim: 24,
        norm_num_groups: 8,
        use_linear_projection: true,
        in_channels: 4,
        out_channels: 4,
      }),
    );
    const inventory = unetInventory(plan);
    expect(inventory.some((s) => s.name === 'down_blocks.1.attentions.1.transformer_blocks.1.attn2.to_k.weight')).toBe(true);
    expect(inventory.find((s) => s.name === 'up_blocks.1.attentions.0.proj_in.weight')?.shape).toEqual([32, 32]);
    const weights = randomWeights('unet', inventory);
    const { graph, builder, output } = buildUnetGraph(plan, inlineParams(weights), { batch: 2, height: 6, width: 10, textLength: 5 });
    expect(sorted(builder.used)).toEqual(sorted(inventory.map((s) => s.name)));
    expect(output.staticShape).toEqual([2, 4, 6, 10]);
    const session = await openGraphSession(graph, { threads: 1 });
    const out = (await session.run({
      sample: float32Feed([2, 4, 6, 10], wave(480)),
      timestep: float32Feed([2], Float32Array.of(999, 0.5)),
      encoder_hidden_states: float32Feed([2, 5, 24], wave(240, 1)),
    })).out_sample!;
    await session.release();
    expect(out.length).toBe(480);
    expect(out.every(Number.isFinite)).toBe(true);
  });
});

describe('VAE variants', () => {
  it('two levels, one resnet per level, a 24×40 image', async () => {
    const plan = planVae(
      parseVaeConfig({
        block_out_channels: [8, 16],
        down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'],
        up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
        layers_per_block: 1,
        norm_num_groups: 4,
        latent_channels: 3,
      }),
    );
    const weights = randomWeights('vae', vaeInventory(plan));
    const encoder = buildVaeEncoderGraph(plan, inlineParams(weights), { batch: 1, height: 24, width: 40 });
    const decoder = buildVaeDecoderGraph(plan, inlineParams(weights), { batch: 1, height: 12, width: 20 });
    expect(sorted([...encoder.builder.used, ...decoder.builder.used])).toEqual(sorted(vaeInventory(plan).map((s) => s.name)));
    const encode = await openGraphSession(encoder.graph, { threads: 1 });
    const moments = await encode.run({ image: float32Feed([1, 3, 24, 40], wave(2880)) });
    await encode.release();
    expect(moments.mean!.length).toBe(3 * 12 * 20);
    const decode = await openGraphSession(decoder.graph, { threads: 1 });
    const image = (await decode.run({ latents: float32Feed([1, 3, 12, 20], moments.mean!) })).sample!;
    await decode.release();
    expect(image.length).toBe(3 * 24 * 40);
    expect(image.every(Number.isFinite)).toBe(true);
  });
});

describe('CLIP text variants', () => {
  it('GELU, 3 layers of 6 heads, 20 tokens, pooling at the first eos_token_id when it is not the legacy 2', async () => {
    const config = parseClipTextConfig({
      hidden_size: 48,
      intermediate_size: 96,
      num_hidden_layers: 3,
      num_attention_heads: 6,
      max_position_embeddings: 24,
      vocab_size: 500,
      hidden_act: 'gelu',
      eos_token_id: 7,
    });
    const weights = randomWeights('clip', clipTextInventory(config));
    const { graph } = buildClipTextGraph(config, inlineParams(weights), { batch: 2, length: 20 });
    // Row 0: EOS (7) at 4 and again at 9, larger ids after it, so argmax would pick another position. Row 1: EOS at 15.
    const ids = new BigInt64Array(40).fill(3n);
    ids.set([1n, 20n, 30n, 40n, 7n, 499n, 498n, 300n, 200n, 7n], 0);
    ids[20 + 15] = 7n;
    const session = await openGraphSession(graph, { threads: 1 });
    const out = await session.run({ input_ids: { dtype: 'int64', dims: [2, 20], data: ids } });
    await session.release();
    const hidden = out[CLIP_TEXT_OUTPUTS.lastHiddenState]!;
    const pooled = out[CLIP_TEXT_OUTPUTS.pooled]!;
    expect(Array.from(pooled.subarray(0, 48))).toEqual(Array.from(hidden.subarray(4 * 48, 5 * 48)));
    expect(Array.from(pooled.subarray(48, 96))).toEqual(Array.from(hidden.subarray((20 + 15) * 48, (20 + 16) * 48)));
  });
});
