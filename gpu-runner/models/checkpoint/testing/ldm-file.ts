// Writes our-named weights as a single-file LDM checkpoint, the way SD 1.x files name them: the specification the
// loader (ldm-names.ts) is held to, written the other way round (our name → the LDM key) and counting block positions
// instead of looking them up, so it stays independent of the loader's block table. Tests only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, writeSafetensors } from '../../../io/safetensors.ts';
import { referencePath } from '../../../../test/fixtures/reference-dir.ts';
import type { LdmLayout } from '../ldm-names.ts';
import { SD15_UNET_CONFIG, SD15_VAE_CONFIG, type SingleFileConfigs } from '../sd15-configs.ts';

export type Component = 'unet' | 'vae' | 'text_encoder';

const tinyDir = (component: string) => referencePath('sd15-tiny', component);
const tinyConfig = (component: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(tinyDir(component), 'config.json'), 'utf8')) as Record<string, unknown>;
/** The sd15-tiny reference configs: SD 1.5's topology at tiny widths (one resnet per block, unlike SD 1.5's two). */
export const TINY_CONFIGS: SingleFileConfigs = { unet: tinyConfig('unet'), vae: tinyConfig('vae'), textEncoder: tinyConfig('text_encoder') };

function layoutOf(unet: Record<string, unknown>, vae: Record<string, unknown>): LdmLayout & { upAttention: boolean[] } {
  const blocks = (unet.block_out_channels as number[]).length;
  const layers = unet.layers_per_block as number;
  return {
    unetLayersPerBlock: new Array<number>(blocks).fill(layers),
    vaeBlocks: (vae.block_out_channels as number[]).length,
    upAttention: (unet.up_block_types as string[]).map((type) => type.startsWith('CrossAttn')),
  };
}
export const SD15_LAYOUT = layoutOf(SD15_UNET_CONFIG as unknown as Record<string, unknown>, SD15_VAE_CONFIG as unknown as Record<string, unknown>);
export const TINY_LAYOUT = layoutOf(TINY_CONFIGS.unet as Record<string, unknown>, TINY_CONFIGS.vae as Record<string, unknown>);

/**
 * The specification this test holds the loader to, written the other way round: our name → the LDM key. Counting
 * positions here (instead of looking them up) keeps it independent of the loader's block table.
 */
export function toLdm(component: Component, name: string, layout: ReturnType<typeof layoutOf>): string {
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
export const ldmShape = (ldmKey: string, shape: readonly number[]) => (/\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(ldmKey) ? [...shape, 1, 1] : [...shape]);

/** Extras real SD 1.x files carry beside the networks: schedule buffers, the EMA bookkeeping, CLIP's position ids. */
export const EXTRAS: Record<string, Tensor> = {
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


const TINY_FILES: Readonly<Record<Component, string>> = {
  unet: 'diffusion_pytorch_model.safetensors',
  vae: 'diffusion_pytorch_model.safetensors',
  text_encoder: 'model.safetensors',
};

/** The sd15-tiny reference weights under our names, per network. */
export function tinyWeights(): Record<Component, Map<string, Tensor>> {
  const load = (component: Component) => loadSafetensors(join(tinyDir(component), TINY_FILES[component])).tensors;
  return { unet: load('unet'), vae: load('vae'), text_encoder: load('text_encoder') };
}

/** The sd15-tiny weights written at `path` as one LDM-named file with the usual extras, in fp32 or fp16. */
export function writeTinyLdmCheckpoint(path: string, dtype: 'F32' | 'F16' = 'F32'): void {
  const tensors = new Map<string, Tensor>(Object.entries(EXTRAS));
  for (const [component, weights] of Object.entries(tinyWeights()) as [Component, Map<string, Tensor>][]) {
    for (const [name, tensor] of weights) {
      const key = toLdm(component, name, TINY_LAYOUT);
      const data = dtype === 'F16' ? float32ToFloat16Bits(tensor.data as Float32Array) : tensor.data;
      tensors.set(key, { dtype, shape: ldmShape(key, tensor.shape), data } as Tensor);
    }
  }
  writeSafetensors(path, tensors);
}
