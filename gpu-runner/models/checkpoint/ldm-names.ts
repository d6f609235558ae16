// The original LDM/CompVis key names of a single-file Stable Diffusion 1.x checkpoint (`v1-5-pruned-emaonly.safetensors`,
// what A1111 and ComfyUI load) mapped to our (diffusers) parameter names. The facts follow diffusers' single-file
// conversion (`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint` in
// src/diffusers/loaders/single_file_utils.py); every key of a file either maps to one parameter, is a known extra that
// inference does not use, or is unknown (and then named in the loader's error).

/** The three networks a single file holds. */
export type LdmComponent = 'unet' | 'vae' | 'text_encoder';

export const LDM_PREFIXES: Readonly<Record<LdmComponent, string>> = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  text_encoder: 'cond_stage_model.transformer.',
};

/** What the index-based LDM names depend on: the UNet's resnets per block and the VAE's block count. */
export interface LdmLayout {
  /** The UNet config's `layers_per_block`, one per down block (down-path order). */
  unetLayersPerBlock: readonly number[];
  /** The VAE's number of resolution levels (`block_out_channels.length`). */
  vaeBlocks: number;
}

export type LdmKeyMapping =
  | {
      kind: 'parameter';
      component: LdmComponent;
      name: string;
      /** The VAE attention's q/k/v/proj_out are 1×1 convolutions in LDM ([C, C, 1, 1]), linear layers for us ([C, C]). */
      squeeze: boolean;
    }
  | { kind: 'ignored'; reason: string }
  | { kind: 'unknown' };

/**
 * Tensors of an LDM checkpoint that inference does not use, each with why. The schedule buffers are those LDM's DDPM
 * registers (the scheduler recomputes them from scheduler_config), as listed among optional keys by checkpoint tools.
 */
const IGNORED_KEYS: ReadonlyMap<string, string> = new Map([
  ...[
    'betas',
    'alphas_cumprod',
    'alphas_cumprod_prev',
    'sqrt_alphas_cumprod',
    'sqrt_one_minus_alphas_cumprod',
    'log_one_minus_alphas_cumprod',
    'sqrt_recip_alphas_cumprod',
    'sqrt_recipm1_alphas_cumprod',
    'posterior_variance',
    'posterior_log_variance_clipped',
    'posterior_mean_coef1',
    'posterior_mean_coef2',
    'logvar',
  ].map((key): [string, string] => [key, 'noise-schedule buffer (recomputed from the scheduler config)']),
  [`${LDM_PREFIXES.text_encoder}text_model.embeddings.position_ids`, 'CLIP position-id buffer (0..76, not a parameter)'],
  [`${LDM_PREFIXES.text_encoder}embeddings.position_ids`, 'CLIP position-id buffer (0..76, not a parameter)'],
]);

/**
 * Key prefixes of tensors inference does not use. `model_ema.*` holds the EMA copy of the UNet under flattened names
 * (plus its decay and update count); in the "emaonly" files `model.diffusion_model.*` already is the EMA copy, and in
 * full files we load `model.diffusion_model.*`, as diffusers does unless asked to extract the EMA weights.
 */
const IGNORED_PREFIXES: readonly (readonly [string, string])[] = [
  ['model_ema.', 'EMA copy of the UNet (model.diffusion_model.* is loaded)'],
  [`${LDM_PREFIXES.vae}loss.`, 'autoencoder training loss (LPIPS and discriminator)'],
];

/** One rename rule: a pattern over the key without its component prefix, and the name it becomes. */
type Rule = readonly [RegExp, (match: RegExpExecArray) => string | undefined];

/** LDM's ResBlock submodule names (openaimodel.py) → diffusers' ResnetBlock2D. */
const UNET_RESNET_PARTS: Readonly<Record<string, string>> = {
  'in_layers.0': 'norm1',
  'in_layers.2': 'conv1',
  'emb_layers.1': 'time_emb_proj',
  'out_layers.0': 'norm2',
  'out_layers.3': 'conv2',
  skip_connection: 'conv_shortcut',
};

/** The VAE's ResnetBlock (model.py) differs only in its shortcut's name. */
const VAE_RESNET_PARTS: Readonly<Record<string, string>> = {
  norm1: 'norm1',
  conv1: 'conv1',
  norm2: 'norm2',
  conv2: 'conv2',
  nin_shortcut: 'conv_shortcut',
};

/** LDM's AttnBlock (model.py) → diffusers' Attention in the VAE mid block. */
const VAE_ATTENTION_PARTS: Readonly<Record<string, string>> = {
  norm: 'group_norm',
  q: 'to_q',
  k: 'to_k',
  v: 'to_v',
  proj_out: 'to_out.0',
};

const PARAM = '(weight|bias)';

function part(table: Readonly<Record<string, string>>, name: string | undefined, param: string | undefined): string | undefined {
  const mapped = name === undefined ? undefined : table[name];
  return mapped === undefined ? undefined : `${mapped}.${param}`;
}

/** Where each numbered LDM input/output block sits in diffusers' down/up blocks. */
interface UnetBlockIndex {
  input: ({ block: number; layer: number } | { block: number; downsampler: true })[];
  output: { block: number; layer: number }[];
}

/**
 * LDM numbers the UNet's blocks in one sequence: input block 0 is conv_in, then per level its resnets (each with its
 * attention at `.1`) and, except at the lowest resolution, a downsampler of its own; output blocks run per up level over
 * layers_per_block + 1 resnets, the upsampler riding on a level's last one.
 */
function unetBlockIndex(layersPerBlock: readonly number[]): UnetBlockIndex {
  const input: UnetBlockIndex['input'] = [{ block: -1, layer: -1 }];
  layersPerBlock.forEach((layers, block) => {
    for (let layer = 0; layer < layers; layer++) input.push({ block, layer });
    if (block < layersPerBlock.length - 1) input.push({ block, downsampler: true });
  });
  const output: UnetBlockIndex['output'] = [];
  [...layersPerBlock].reverse().forEach((layers, block) => {
    for (let layer = 0; layer <= layers; layer++) output.push({ block, layer });
  });
  return { input, output };
}

function unetRules(layout: LdmLayout): Rule[] {
  const index = unetBlockIndex(layout.unetLayersPerBlock);
  const input = (i: string | undefined) => index.input[Number(i)];
  const output = (i: string | undefined) => index.output[Number(i)];
  const fixed: Readonly<Record<string, string>> = {
    'time_embed.0': 'time_embedding.linear_1',
    'time_embed.2': 'time_embedding.linear_2',
    'input_blocks.0.0': 'conv_in',
    'out.0': 'conv_norm_out',
    'out.2': 'conv_out',
  };
  return [
    [new RegExp(`^(time_embed\\.[02]|input_blocks\\.0\\.0|out\\.[02])\\.${PARAM}$`), (m) => `${fixed[m[1]!]}.${m[2]}`],
    [
      new RegExp(`^input_blocks\\.(\\d+)\\.0\\.op\\.${PARAM}$`),
      (m) => {
        const at = input(m[1]);
        return at && 'downsampler' in at ? `down_blocks.${at.block}.downsamplers.0.conv.${m[2]}` : undefined;
      },
    ],
    [
      new RegExp(`^input_blocks\\.(\\d+)\\.0\\.(.+)\\.${PARAM}$`),
      (m) => {
        const at = input(m[1]);
        const rest = part(UNET_RESNET_PARTS, m[2], m[3]);
        return at && 'layer' in at && at.block >= 0 && rest ? `down_blocks.${at.block}.resnets.${at.layer}.${rest}` : undefined;
      },
    ],
    [
      /^input_blocks\.(\d+)\.1\.(.+)$/,
      (m) => {
        const at = input(m[1]);
        return at && 'layer' in at && at.block >= 0 ? `down_blocks.${at.block}.attentions.${at.layer}.${m[2]}` : undefined;
      },
    ],
    [
      new RegExp(`^middle_block\\.([02])\\.(.+)\\.${PARAM}$`),
      (m) => {
        const rest = part(UNET_RESNET_PARTS, m[2], m[3]);
        return rest ? `mid_block.resnets.${Number(m[1]) / 2}.${rest}` : undefined;
      },
    ],
    [/^middle_block\.1\.(.+)$/, (m) => `mid_block.attentions.0.${m[1]}`],
    [
      new RegExp(`^output_blocks\\.(\\d+)\\.0\\.(.+)\\.${PARAM}$`),
      (m) => {
        const at = output(m[1]);
        const rest = part(UNET_RESNET_PARTS, m[2], m[3]);
        return at && rest ? `up_blocks.${at.block}.resnets.${at.layer}.${rest}` : undefined;
      },
    ],
    // The upsampler follows the resnet (`.1.conv`) or the resnet and its attention (`.2.conv`) of a level's last layer.
    [
      new RegExp(`^output_blocks\\.(\\d+)\\.[12]\\.conv\\.${PARAM}$`),
      (m) => {
        const at = output(m[1]);
        const last = at ? layout.unetLayersPerBlock[layout.unetLayersPerBlock.length - 1 - at.block] : undefined;
        return at && at.layer === last && at.block < layout.unetLayersPerBlock.length - 1
          ? `up_blocks.${at.block}.upsamplers.0.conv.${m[2]}`
          : undefined;
      },
    ],
    [
      /^output_blocks\.(\d+)\.1\.(.+)$/,
      (m) => {
        const at = output(m[1]);
        return at ? `up_blocks.${at.block}.attentions.${at.layer}.${m[2]}` : undefined;
      },
    ],
  ];
}

function vaeRules(layout: LdmLayout): Rule[] {
  // LDM's decoder numbers its levels from the lowest resolution's opposite end: up.(n-1) runs first.
  const upBlock = (level: string | undefined) => layout.vaeBlocks - 1 - Number(level);
  const coder = '(encoder|decoder)';
  return [
    [new RegExp(`^${coder}\\.(conv_in|conv_out)\\.${PARAM}$`), (m) => `${m[1]}.${m[2]}.${m[3]}`],
    [new RegExp(`^${coder}\\.norm_out\\.${PARAM}$`), (m) => `${m[1]}.conv_norm_out.${m[2]}`],
    [new RegExp(`^(quant_conv|post_quant_conv)\\.${PARAM}$`), (m) => `${m[1]}.${m[2]}`],
    [
      new RegExp(`^encoder\\.down\\.(\\d+)\\.block\\.(\\d+)\\.(\\w+)\\.${PARAM}$`),
      (m) => {
        const rest = part(VAE_RESNET_PARTS, m[3], m[4]);
        return rest ? `encoder.down_blocks.${m[1]}.resnets.${m[2]}.${rest}` : undefined;
      },
    ],
    [new RegExp(`^encoder\\.down\\.(\\d+)\\.downsample\\.conv\\.${PARAM}$`), (m) => `encoder.down_blocks.${m[1]}.downsamplers.0.conv.${m[2]}`],
    [
      new RegExp(`^decoder\\.up\\.(\\d+)\\.block\\.(\\d+)\\.(\\w+)\\.${PARAM}$`),
      (m) => {
        const rest = part(VAE_RESNET_PARTS, m[3], m[4]);
        return rest ? `decoder.up_blocks.${upBlock(m[1])}.resnets.${m[2]}.${rest}` : undefined;
      },
    ],
    [new RegExp(`^decoder\\.up\\.(\\d+)\\.upsample\\.conv\\.${PARAM}$`), (m) => `decoder.up_blocks.${upBlock(m[1])}.upsamplers.0.conv.${m[2]}`],
    [
      new RegExp(`^${coder}\\.mid\\.block_([12])\\.(\\w+)\\.${PARAM}$`),
      (m) => {
        const rest = part(VAE_RESNET_PARTS, m[3], m[4]);
        return rest ? `${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${rest}` : undefined;
      },
    ],
    [
      new RegExp(`^${coder}\\.mid\\.attn_1\\.(\\w+)\\.${PARAM}$`),
      (m) => {
        const rest = part(VAE_ATTENTION_PARTS, m[2], m[3]);
        return rest ? `${m[1]}.mid_block.attentions.0.${rest}` : undefined;
      },
    ],
  ];
}

function applyRules(rules: readonly Rule[], key: string): string | undefined {
  for (const [pattern, rename] of rules) {
    const match = pattern.exec(key);
    if (match) return rename(match);
  }
  return undefined;
}

/** Maps LDM keys to our names for one layout (build once per checkpoint: the rules depend on the configs). */
export function ldmKeyMapper(layout: LdmLayout): (key: string) => LdmKeyMapping {
  const unet = unetRules(layout);
  const vae = vaeRules(layout);
  return (key) => {
    const ignored = IGNORED_KEYS.get(key) ?? IGNORED_PREFIXES.find(([prefix]) => key.startsWith(prefix))?.[1];
    if (ignored) return { kind: 'ignored', reason: ignored };
    const parameter = (component: LdmComponent, name: string | undefined, squeeze = false): LdmKeyMapping =>
      name === undefined ? { kind: 'unknown' } : { kind: 'parameter', component, name, squeeze };
    if (key.startsWith(LDM_PREFIXES.unet)) return parameter('unet', applyRules(unet, key.slice(LDM_PREFIXES.unet.length)));
    if (key.startsWith(LDM_PREFIXES.vae)) {
      const rest = key.slice(LDM_PREFIXES.vae.length);
      return parameter('vae', applyRules(vae, rest), /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(rest));
    }
    if (key.startsWith(LDM_PREFIXES.text_encoder)) {
      // transformers' CLIPTextModel state dict; checkpoints saved before its `text_model` wrapper lack that segment.
      const rest = key.slice(LDM_PREFIXES.text_encoder.length);
      return parameter('text_encoder', rest.startsWith('text_model.') ? rest : `text_model.${rest}`);
    }
    return { kind: 'unknown' };
  };
}
