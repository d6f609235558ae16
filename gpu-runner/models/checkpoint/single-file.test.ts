import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { ldmKeyMapper } from './ldm-names.ts';
import { SD15_CONFIGS, SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from './sd15-configs.ts';
import { openSingleFileCheckpoint } from './single-file.ts';
import { EXTRAS, ldmShape, SD15_LAYOUT, TINY_CONFIGS, tinyWeights, toLdm, writeTinyLdmCheckpoint } from './testing/ldm-file.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-single-file-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type ManifestTensor = { name: string; shape: number[] };
type Manifest = { input_config: Record<string, unknown>; tensors: ManifestTensor[] };
const manifest = (model: string): Manifest =>
  JSON.parse(readFileSync(referencePath('sd15-manifest', `${model}_manifest.json`), 'utf8')) as Manifest;
const full = { unet: manifest('unet'), vae: manifest('vae'), text_encoder: manifest('text_encoder') };


describe('LDM key names', () => {
  const mapKey = ldmKeyMapper(SD15_LAYOUT);

  it('match the names diffusers converts them to (SD 1.5 layout)', () => {
    const pairs: [string, string][] = [
      ['model.diffusion_model.input_blocks.0.0.weight', 'conv_in.weight'],
      ['model.diffusion_model.time_embed.2.bias', 'time_embedding.linear_2.bias'],
      ['model.diffusion_model.input_blocks.3.0.op.weight', 'down_blocks.0.downsamplers.0.conv.weight'],
      ['model.diffusion_model.input_blocks.4.0.skip_connection.weight', 'down_blocks.1.resnets.0.conv_shortcut.weight'],
      ['model.diffusion_model.input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight', 'down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight'],
      ['model.diffusion_model.input_blocks.11.0.out_layers.3.bias', 'down_blocks.3.resnets.1.conv2.bias'],
      ['model.diffusion_model.middle_block.2.emb_layers.1.weight', 'mid_block.resnets.1.time_emb_proj.weight'],
      ['model.diffusion_model.middle_block.1.proj_in.weight', 'mid_block.attentions.0.proj_in.weight'],
      ['model.diffusion_model.output_blocks.2.1.conv.weight', 'up_blocks.0.upsamplers.0.conv.weight'],
      ['model.diffusion_model.output_blocks.5.2.conv.bias', 'up_blocks.1.upsamplers.0.conv.bias'],
      ['model.diffusion_model.output_blocks.11.1.proj_out.weight', 'up_blocks.3.attentions.2.proj_out.weight'],
      ['model.diffusion_model.out.0.weight', 'conv_norm_out.weight'],
      ['first_stage_model.decoder.up.0.block.0.nin_shortcut.weight', 'decoder.up_blocks.3.resnets.0.conv_shortcut.weight'],
      ['first_stage_model.decoder.up.3.upsample.conv.weight', 'decoder.up_blocks.0.upsamplers.0.conv.weight'],
      ['first_stage_model.encoder.down.2.downsample.conv.bias', 'encoder.down_blocks.2.downsamplers.0.conv.bias'],
      ['first_stage_model.encoder.mid.attn_1.proj_out.weight', 'encoder.mid_block.attentions.0.to_out.0.weight'],
      ['first_stage_model.decoder.mid.block_2.norm1.weight', 'decoder.mid_block.resnets.1.norm1.weight'],
      ['first_stage_model.encoder.norm_out.bias', 'encoder.conv_norm_out.bias'],
      ['cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias', 'text_model.encoder.layers.11.mlp.fc2.bias'],
      ['cond_stage_model.transformer.encoder.layers.0.self_attn.q_proj.weight', 'text_model.encoder.layers.0.self_attn.q_proj.weight'],
    ];
    for (const [ldm, ours] of pairs) expect({ ldm, ours: mapKey(ldm) }).toMatchObject({ ldm, ours: { kind: 'parameter', name: ours } });
  });

  it('cover every tensor of full-size SD 1.5, one key per parameter', () => {
    for (const component of ['unet', 'vae', 'text_encoder'] as const) {
      const keys = full[component].tensors.map((t) => toLdm(component, t.name, SD15_LAYOUT));
      expect(new Set(keys).size).toBe(keys.length);
      const mapped = keys.map((key) => mapKey(key));
      expect(mapped).toEqual(full[component].tensors.map((t) => expect.objectContaining({ kind: 'parameter', component, name: t.name })));
    }
  });

  it('ignores the known extras by name and calls anything else unknown', () => {
    for (const key of Object.keys(EXTRAS)) expect(mapKey(key).kind).toBe('ignored');
    expect(mapKey('first_stage_model.loss.logvar').kind).toBe('ignored');
    for (const key of [
      'model.diffusion_model.input_blocks.1.0.op.weight',
      'model.diffusion_model.input_blocks.12.0.in_layers.0.weight',
      'model.diffusion_model.output_blocks.3.1.conv.weight',
      'first_stage_model.encoder.down.0.block.0.norm3.weight',
      'cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight',
      'conditioner.embedders.0.transformer.text_model.final_layer_norm.weight',
    ]) {
      expect({ key, mapping: mapKey(key) }).toEqual({ key, mapping: { kind: 'unknown' } });
    }
  });
});

describe('SD 1.5 configs', () => {
  it('are the configs the full-size manifests were made from', () => {
    const withoutVersion = (config: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(config).filter(([key]) => !['_diffusers_version', '_name_or_path', 'torch_dtype'].includes(key)));
    expect(SD15_UNET_CONFIG).toEqual(withoutVersion(full.unet.input_config));
    expect(SD15_VAE_CONFIG).toEqual(withoutVersion(full.vae.input_config));
    expect(SD15_TEXT_ENCODER_CONFIG).toEqual(withoutVersion(full.text_encoder.input_config));
  });
});

/** Header entries for `tensors` laid out back to back; returns the header object and the data size. */
function layout(tensors: { name: string; dtype: string; shape: number[]; bytes: number }[]): { header: Record<string, unknown>; size: number } {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
    offset += t.bytes;
  }
  return { header, size: offset };
}

/**
 * A full-size single-file SD 1.5 checkpoint whose tensors read as zeros: the header is real, the 2 GB of fp16 data
 * a hole in a sparse file, so the loader sees exactly the names, dtypes and shapes a real file has.
 */
function writeSparseFullSize(path: string, edit: (keys: Map<string, number[]>) => void = () => {}): void {
  const keys = new Map<string, number[]>();
  for (const component of ['unet', 'vae', 'text_encoder'] as const) {
    for (const t of full[component].tensors) {
      const key = toLdm(component, t.name, SD15_LAYOUT);
      keys.set(key, ldmShape(key, t.shape));
    }
  }
  edit(keys);
  const entries = [...keys].map(([name, shape]) => ({ name, dtype: 'F16', shape, bytes: 2 * shape.reduce((a, b) => a * b, 1) }));
  for (const [name, extra] of Object.entries(EXTRAS)) entries.push({ name, dtype: extra.dtype, shape: [...extra.shape], bytes: extra.data.byteLength });
  const { header, size } = layout(entries);
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.byteLength));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, json);
    ftruncateSync(fd, 8 + json.byteLength + size);
  } finally {
    closeSync(fd);
  }
}

describe('opening a full-size single-file SD 1.5 checkpoint', () => {
  it('accounts for every tensor: 686 UNet, 248 VAE and 196 text-encoder parameters, the extras ignored', () => {
    const path = join(scratch, 'v1-5-sparse.safetensors');
    writeSparseFullSize(path);
    const checkpoint = openSingleFileCheckpoint(path, SD15_CONFIGS);
    expect(checkpoint.unet.weights.names.length).toBe(686);
    expect(checkpoint.vae.weights.names.length).toBe(248);
    expect(checkpoint.textEncoder.weights.names.length).toBe(196);
    expect(checkpoint.unet.weights.dtype).toBe('float16');
    expect(checkpoint.ignored.map((entry) => entry.key).sort()).toEqual(Object.keys(EXTRAS).sort());
    const attention = checkpoint.vae.weights.tensor('decoder.mid_block.attentions.0.to_q.weight');
    expect(attention).toMatchObject({ key: 'first_stage_model.decoder.mid.attn_1.q.weight', shape: [512, 512], byteLength: 512 * 512 * 2 });
    expect(checkpoint.unet.dir).toBe(scratch);
  });

  it('names a missing tensor, an unexpected one by its key, and an unknown one', () => {
    const missing = join(scratch, 'missing.safetensors');
    writeSparseFullSize(missing, (keys) => keys.delete('first_stage_model.decoder.up.0.block.0.conv1.weight'));
    expect(() => openSingleFileCheckpoint(missing)).toThrow(/vae: .*missing tensor\(s\): decoder\.up_blocks\.3\.resnets\.0\.conv1\.weight/);

    const unexpected = join(scratch, 'unexpected.safetensors');
    writeSparseFullSize(unexpected, (keys) => keys.set('model.diffusion_model.input_blocks.1.1.transformer_blocks.1.attn1.to_q.weight', [320, 320]));
    expect(() => openSingleFileCheckpoint(unexpected)).toThrow(
      /unet: .*unexpected tensor\(s\): model\.diffusion_model\.input_blocks\.1\.1\.transformer_blocks\.1\.attn1\.to_q\.weight \(as down_blocks\.0\.attentions\.0\.transformer_blocks\.1\.attn1\.to_q\.weight\)/,
    );

    const unknown = join(scratch, 'unknown.safetensors');
    writeSparseFullSize(unknown, (keys) => keys.set('control_model.zero_convs.0.0.weight', [320, 320, 1, 1]));
    expect(() => openSingleFileCheckpoint(unknown)).toThrow(/unknown tensor\(s\) for an SD 1\.x checkpoint: control_model\.zero_convs\.0\.0\.weight/);

    const sdxl = join(scratch, 'sdxl-like.safetensors');
    writeSparseFullSize(sdxl, (keys) => keys.set('conditioner.embedders.1.model.ln_final.weight', [1280]));
    expect(() => openSingleFileCheckpoint(sdxl)).toThrow(/\(this looks like SDXL, which the runner does not load\): conditioner\.embedders\.1/);

    const sd2 = join(scratch, 'sd2-shaped.safetensors');
    writeSparseFullSize(sd2, (keys) => keys.set('model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight', [320, 1024]));
    expect(() => openSingleFileCheckpoint(sd2)).toThrow(/attn2\.to_k\.weight is \[320, 1024\], expected \[320, 768\]/);
  });

  it('refuses a file without LDM UNet keys, saying what it is not', () => {
    expect(() => openSingleFileCheckpoint(referencePath('sd15-tiny', 'unet', 'diffusion_pytorch_model.safetensors'))).toThrow(
      /no model\.diffusion_model\.\* tensors, so not a single-file SD 1\.x checkpoint/,
    );
  });
});

describe('a single-file checkpoint round trip (tiny widths)', () => {
  const ours = tinyWeights();

  it('loads every parameter back under our name with the same values', () => {
    const path = join(scratch, 'tiny-ldm.safetensors');
    writeTinyLdmCheckpoint(path, 'F32');
    const checkpoint = openSingleFileCheckpoint(path, TINY_CONFIGS);
    for (const [component, weights] of [
      ['unet', checkpoint.unet.weights],
      ['vae', checkpoint.vae.weights],
      ['text_encoder', checkpoint.textEncoder.weights],
    ] as const) {
      const loaded = weights.readAllFloat32();
      expect(loaded.size).toBe(ours[component].size);
      const bytes = (array: Float32Array | undefined) => (array ? Buffer.from(array.buffer, array.byteOffset, array.byteLength) : Buffer.alloc(0));
      const differing = [...ours[component]].filter(([name, tensor]) => !bytes(loaded.get(name)).equals(bytes(tensor.data as Float32Array)));
      expect(differing.map(([name]) => name)).toEqual([]);
    }
  });

  it('widens fp16 exactly as the diffusers loader does', () => {
    const path = join(scratch, 'tiny-ldm-fp16.safetensors');
    writeTinyLdmCheckpoint(path, 'F16');
    const checkpoint = openSingleFileCheckpoint(path, TINY_CONFIGS);
    expect(checkpoint.unet.weights.dtype).toBe('float16');
    const reference = ours.vae.get('decoder.mid_block.attentions.0.to_v.weight')!.data as Float32Array;
    const widened = checkpoint.vae.weights.readFloat32('decoder.mid_block.attentions.0.to_v.weight');
    expect(widened.length).toBe(reference.length);
    const maxDiff = Math.max(...widened.map((v, i) => Math.abs(v - reference[i]!)));
    expect(maxDiff).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(1e-3);
  });
});
