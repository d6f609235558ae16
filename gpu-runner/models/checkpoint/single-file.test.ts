import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, writeSafetensors } from '../../io/safetensors.ts';
import { referencePath } from '../../parity/reference-dir.ts';
import { type LdmLayout, ldmKeyMapper } from './ldm-names.ts';
import { SD15_CONFIGS, SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG, type SingleFileConfigs } from './sd15-configs.ts';
import { openSingleFileCheckpoint } from './single-file.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-single-file-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type ManifestTensor = { name: string; shape: number[] };
type Manifest = { input_config: Record<string, unknown>; tensors: ManifestTensor[] };
const manifest = (model: string): Manifest =>
  JSON.parse(readFileSync(referencePath('sd15-manifest', `${model}_manifest.json`), 'utf8')) as Manifest;
const full = { unet: manifest('unet'), vae: manifest('vae'), text_encoder: manifest('text_encoder') };

const tinyDir = (component: string) => referencePath('sd15-tiny', component);
const tinyConfig = (component: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(tinyDir(component), 'config.json'), 'utf8')) as Record<string, unknown>;
const TINY_CONFIGS: SingleFileConfigs = { unet: tinyConfig('unet'), vae: tinyConfig('vae'), textEncoder: tinyConfig('text_encoder') };

function layoutOf(unet: Record<string, unknown>, vae: Record<string, unknown>): LdmLayout & { upAttention: boolean[] } {
  const blocks = (unet.block_out_channels as number[]).length;
  const layers = unet.layers_per_block as number;
  return {
    unetLayersPerBlock: new Array<number>(blocks).fill(layers),
    vaeBlocks: (vae.block_out_channels as number[]).length,
    upAttention: (unet.up_block_types as string[]).map((type) => type.startsWith('CrossAttn')),
  };
}
const SD15_LAYOUT = layoutOf(SD15_UNET_CONFIG as unknown as Record<string, unknown>, SD15_VAE_CONFIG as unknown as Record<string, unknown>);
const TINY_LAYOUT = layoutOf(TINY_CONFIGS.unet as Record<string, unknown>, TINY_CONFIGS.vae as Record<string, unknown>);

/**
 * The specification this test holds the loader to, written the other way round: our name → the LDM key. Counting
 * positions here (instead of looking them up) keeps it independent of the loader's block table.
 */
function toLdm(component: 'unet' | 'vae' | 'text_encoder', name: string, layout: ReturnType<typeof layoutOf>): string {
  if (component === 'text_encoder') return `cond_stage_model.transformer.${name}`;
  const resnet = (rest: string, parts: Record<string, string>) => {
    const [part, param] = [rest.slice(0, rest.lastIndexOf('.')), rest.slice(rest.lastIndexOf('.') + 1)];
    return `${parts[part] ?? `?${part}`}.${param}`;
  };
  if (component === 'vae') {
    const parts = { norm1: 'norm1', conv1: 'conv1', norm2: 'norm2', conv2: 'conv2', conv_shortcut: 'nin_shortcut' };
    const attention: Record<string, string> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };
    const level = (i: string) => layout.vaeBlocks - 1 - Number(i);
    const rules: [RegExp, (m: RegExpExecArray) => string][] = [
      [/^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => `encoder.down.${m[1]}.block.${m[2]}.${resnet(m[3]!, parts)}`],
      [/^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/, (m) => `encoder.down.${m[1]}.downsample.conv.${m[2]}`],
      [/^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => `decoder.up.${level(m[1]!)}.block.${m[2]}.${resnet(m[3]!, parts)}`],
      [/^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/, (m) => `decoder.up.${level(m[1]!)}.upsample.conv.${m[2]}`],
      [/^(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)$/, (m) => `${m[1]}.mid.block_${Number(m[2]) + 1}.${resnet(m[3]!, parts)}`],
      [/^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$/, (m) => `${m[1]}.mid.attn_1.${attention[m[2]!]}.${m[3]}`],
      [/^(encoder|decoder)\.conv_norm_out\.(.+)$/, (m) => `${m[1]}.norm_out.${m[2]}`],
    ];
    const rule = rules.find(([pattern]) => pattern.test(name));
    return `first_stage_model.${rule ? rule[1](rule[0].exec(name)!) : name}`;
  }
  const parts = { norm1: 'in_layers.0', conv1: 'in_layers.2', time_emb_proj: 'emb_layers.1', norm2: 'out_layers.0', conv2: 'out_layers.3', conv_shortcut: 'skip_connection' };
  const layers = layout.unetLayersPerBlock;
  const firstInput = (block: number) => 1 + layers.slice(0, block).reduce((sum, n) => sum + n + 1, 0);
  const up = [...layers].reverse();
  const firstOutput = (block: number) => up.slice(0, block).reduce((sum, n) => sum + n + 1, 0);
  const fixed: Record<string, string> = {
    conv_in: 'input_blocks.0.0',
    'time_embedding.linear_1': 'time_embed.0',
    'time_embedding.linear_2': 'time_embed.2',
    conv_norm_out: 'out.0',
    conv_out: 'out.2',
  };
  const rules: [RegExp, (m: RegExpExecArray) => string][] = [
    [/^(conv_in|time_embedding\.linear_[12]|conv_norm_out|conv_out)\.(weight|bias)$/, (m) => `${fixed[m[1]!]}.${m[2]}`],
    [/^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => `input_blocks.${firstInput(Number(m[1])) + Number(m[2])}.0.${resnet(m[3]!, parts)}`],
    [/^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/, (m) => `input_blocks.${firstInput(Number(m[1])) + Number(m[2])}.1.${m[3]}`],
    [/^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/, (m) => `input_blocks.${firstInput(Number(m[1])) + layers[Number(m[1])]!}.0.op.${m[2]}`],
    [/^mid_block\.resnets\.(\d)\.(.+)$/, (m) => `middle_block.${2 * Number(m[1])}.${resnet(m[2]!, parts)}`],
    [/^mid_block\.attentions\.0\.(.+)$/, (m) => `middle_block.1.${m[1]}`],
    [/^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => `output_blocks.${firstOutput(Number(m[1])) + Number(m[2])}.0.${resnet(m[3]!, parts)}`],
    [/^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/, (m) => `output_blocks.${firstOutput(Number(m[1])) + Number(m[2])}.1.${m[3]}`],
    [
      /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/,
      (m) => `output_blocks.${firstOutput(Number(m[1])) + up[Number(m[1])]!}.${layout.upAttention[Number(m[1])] ? 2 : 1}.conv.${m[2]}`,
    ],
  ];
  const rule = rules.find(([pattern]) => pattern.test(name));
  if (!rule) throw new Error(`no LDM name for ${name}`);
  return `model.diffusion_model.${rule[1](rule[0].exec(name)!)}`;
}

/** LDM stores the VAE attention's q/k/v/proj_out as 1×1 convolutions. */
const ldmShape = (ldmKey: string, shape: readonly number[]) => (/\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(ldmKey) ? [...shape, 1, 1] : [...shape]);

/** Extras real SD 1.x files carry beside the networks: schedule buffers, the EMA bookkeeping, CLIP's position ids. */
const EXTRAS: Record<string, Tensor> = {
  alphas_cumprod: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
  betas: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
  posterior_mean_coef2: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
  'model_ema.decay': { dtype: 'F32', shape: [], data: new Float32Array([0.9999]) },
  'model_ema.num_updates': { dtype: 'I32', shape: [], data: new Int32Array([1]) },
  'model_ema.diffusion_modelinput_blocks00weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) },
  'cond_stage_model.transformer.text_model.embeddings.position_ids': {
    dtype: 'I64',
    shape: [1, 77],
    data: BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i)),
  },
};

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

    const sd2 = join(scratch, 'sd2-shaped.safetensors');
    writeSparseFullSize(sd2, (keys) => keys.set('model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight', [320, 1024]));
    expect(() => openSingleFileCheckpoint(sd2)).toThrow(/attn2\.to_k\.weight is \[320, 1024\], expected \[320, 768\]/);
  });

  it('refuses a file without LDM UNet keys, saying what it is not', () => {
    expect(() => openSingleFileCheckpoint(join(tinyDir('unet'), 'diffusion_pytorch_model.safetensors'))).toThrow(
      /no model\.diffusion_model\.\* tensors, so not a single-file SD 1\.x checkpoint/,
    );
  });
});

describe('a single-file checkpoint round trip (tiny widths)', () => {
  const files = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' } as const;
  const ours = Object.fromEntries(
    Object.entries(files).map(([component, file]) => [component, loadSafetensors(join(tinyDir(component), file)).tensors]),
  ) as Record<keyof typeof files, Map<string, Tensor>>;

  /** Our-named tiny weights written as one LDM-named file, optionally as fp16. */
  function writeLdm(path: string, dtype: 'F32' | 'F16'): void {
    const tensors = new Map<string, Tensor>(Object.entries(EXTRAS));
    for (const component of Object.keys(files) as (keyof typeof files)[]) {
      for (const [name, tensor] of ours[component]) {
        const key = toLdm(component, name, TINY_LAYOUT);
        const data = dtype === 'F16' ? float32ToFloat16Bits(tensor.data as Float32Array) : tensor.data;
        tensors.set(key, { dtype, shape: ldmShape(key, tensor.shape), data } as Tensor);
      }
    }
    writeSafetensors(path, tensors);
  }

  it('loads every parameter back under our name with the same values', () => {
    const path = join(scratch, 'tiny-ldm.safetensors');
    writeLdm(path, 'F32');
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
    writeLdm(path, 'F16');
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
