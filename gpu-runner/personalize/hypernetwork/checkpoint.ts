// Hypernetwork checkpoints (safetensors): every parameter by its inventory name, with the config, the LiDB settings and
// the layer order the heads are tied to in `__metadata__`. Also imports ViT encoder weights from timm or open_clip files.
import { z } from 'zod';
import { float32ToFloat16Bits, parseSafetensors, serializeSafetensors, type Tensor, toFloat32 } from '../../io/safetensors.ts';
import { formatShape, numelOf, type ParameterSpec, shapesEqual } from '../../models/inventory.ts';
import type { AdaptedLayerSelection } from '../lidb/adapted-layers.ts';
import { type LidbSettings, lidbSettingsSchema } from '../lidb/settings.ts';
import { layerOrderSha256 } from '../weights/native-format.ts';
import { type HypernetworkConfig, parseHypernetworkConfig, type VitConfig } from './config.ts';

export const HYPERNETWORK_FORMAT = 'hyperdreambooth.hypernetwork';
export const HYPERNETWORK_FORMAT_VERSION = '1';

export interface HypernetworkCheckpoint {
  readonly config: HypernetworkConfig;
  readonly lidb: LidbSettings;
  readonly selection: AdaptedLayerSelection;
  readonly layerNames: readonly string[];
  readonly params: Map<string, Float32Array>;
  /** Free-form training facts (step, data set, losses), kept as strings. */
  readonly info: Record<string, string>;
}

export function encodeHypernetworkCheckpoint(checkpoint: HypernetworkCheckpoint, inventory: readonly ParameterSpec[], dtype: 'F32' | 'F16' = 'F32'): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const { name, shape } of inventory) {
    const data = checkpoint.params.get(name);
    if (!data) throw new Error(`hypernetwork checkpoint: parameter "${name}" is missing`);
    if (data.length !== numelOf(shape)) throw new Error(`hypernetwork checkpoint: "${name}" has ${data.length} values, ${formatShape(shape)} needs ${numelOf(shape)}`);
    tensors[name] = dtype === 'F16' ? { dtype: 'F16', shape: [...shape], data: float32ToFloat16Bits(data) } : { dtype: 'F32', shape: [...shape], data };
  }
  return serializeSafetensors(tensors, {
    ...checkpoint.info,
    format: HYPERNETWORK_FORMAT,
    format_version: HYPERNETWORK_FORMAT_VERSION,
    config: JSON.stringify(checkpoint.config),
    lidb: JSON.stringify(checkpoint.lidb),
    layers: JSON.stringify({ unet: checkpoint.selection.unet, text_encoder: checkpoint.selection.textEncoder }),
    layer_count: String(checkpoint.layerNames.length),
    layer_order_sha256: layerOrderSha256(checkpoint.layerNames.map((name) => ({ name }))),
  });
}

const metadataSchema = z.object({
  format: z.literal(HYPERNETWORK_FORMAT),
  format_version: z.literal(HYPERNETWORK_FORMAT_VERSION),
  config: z.string(),
  lidb: z.string(),
  layers: z.string(),
  layer_count: z.string(),
  layer_order_sha256: z.string(),
});

/**
 * Reads a checkpoint for a known layer list (the heads are per layer, in order): refuses one trained for other layers.
 * `inventoryFor` gives the expected parameters for the stored config.
 */
export function decodeHypernetworkCheckpoint(
  bytes: Uint8Array,
  layerNames: readonly string[],
  inventoryFor: (config: HypernetworkConfig, lidb: LidbSettings) => ParameterSpec[],
): HypernetworkCheckpoint {
  const { header, tensors } = parseSafetensors(bytes, 'hypernetwork checkpoint');
  const meta = metadataSchema.safeParse(header.metadata);
  if (!meta.success) throw new Error(`hypernetwork checkpoint: bad __metadata__: ${z.prettifyError(meta.error)}`);
  const config = parseHypernetworkConfig(JSON.parse(meta.data.config));
  const lidb = lidbSettingsSchema.parse(JSON.parse(meta.data.lidb));
  if (Number(meta.data.layer_count) !== layerNames.length || meta.data.layer_order_sha256 !== layerOrderSha256(layerNames.map((name) => ({ name })))) {
    throw new Error(`hypernetwork checkpoint: trained for ${meta.data.layer_count} layers in another order than this model's ${layerNames.length}`);
  }
  const selectionJson = JSON.parse(meta.data.layers) as { unet: AdaptedLayerSelection['unet']; text_encoder: AdaptedLayerSelection['textEncoder'] };
  const params = new Map<string, Float32Array>();
  for (const { name, shape } of inventoryFor(config, lidb)) {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`hypernetwork checkpoint: parameter "${name}" is missing`);
    if (!shapesEqual(tensor.shape, shape)) throw new Error(`hypernetwork checkpoint: "${name}" is ${formatShape(tensor.shape)}, expected ${formatShape(shape)}`);
    params.set(name, Float32Array.from(toFloat32(tensor)));
  }
  const info = Object.fromEntries(Object.entries(header.metadata).filter(([key]) => !(key in metadataSchema.shape)));
  return { config, lidb, selection: { unet: selectionJson.unet, textEncoder: selectionJson.text_encoder }, layerNames, params, info };
}

/** open_clip's VisionTransformer names → ours (timm's, under `encoder.`). `visual.proj` is not used: face_proj replaces it. */
function openClipName(name: string): string | undefined {
  const rules: [RegExp, string][] = [
    [/^visual\.conv1\.weight$/, 'encoder.patch_embed.proj.weight'],
    [/^visual\.class_embedding$/, 'encoder.cls_token'],
    [/^visual\.positional_embedding$/, 'encoder.pos_embed'],
    [/^visual\.ln_pre\.(weight|bias)$/, 'encoder.norm_pre.$1'],
    [/^visual\.ln_post\.(weight|bias)$/, 'encoder.norm.$1'],
    [/^visual\.transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias)$/, 'encoder.blocks.$1.norm1.$2'],
    [/^visual\.transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias)$/, 'encoder.blocks.$1.norm2.$2'],
    [/^visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$/, 'encoder.blocks.$1.attn.qkv.weight'],
    [/^visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_bias$/, 'encoder.blocks.$1.attn.qkv.bias'],
    [/^visual\.transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias)$/, 'encoder.blocks.$1.attn.proj.$2'],
    [/^visual\.transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias)$/, 'encoder.blocks.$1.mlp.fc1.$2'],
    [/^visual\.transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias)$/, 'encoder.blocks.$1.mlp.fc2.$2'],
  ];
  for (const [pattern, target] of rules) if (pattern.test(name)) return name.replace(pattern, target);
  return undefined;
}

/**
 * ViT encoder weights from a timm (`cls_token`, `blocks.N…`, optionally under `model.`) or open_clip (`visual.…`)
 * safetensors file, checked against the encoder's inventory. open_clip's patch conv has no bias (zeros are used).
 */
export function importVitWeights(bytes: Uint8Array, format: 'timm' | 'open_clip', encoderInventory: readonly ParameterSpec[], encoder: VitConfig): Map<string, Float32Array> {
  const { tensors } = parseSafetensors(bytes, `${format} ViT checkpoint`);
  const wanted = new Map(encoderInventory.filter((p) => p.name.startsWith('encoder.')).map((p) => [p.name, p.shape]));
  const out = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) {
    const ours = format === 'timm' ? `encoder.${name.replace(/^model\./, '')}` : openClipName(name);
    if (!ours || !wanted.has(ours)) continue;
    const shape = wanted.get(ours)!;
    if (numelOf(tensor.shape) !== numelOf(shape)) throw new Error(`${format} ViT: "${name}" is ${formatShape(tensor.shape)}, "${ours}" needs ${formatShape(shape)}`);
    out.set(ours, Float32Array.from(toFloat32(tensor)));
  }
  if (format === 'open_clip' && !out.has('encoder.patch_embed.proj.bias')) out.set('encoder.patch_embed.proj.bias', new Float32Array(encoder.width));
  const missing = [...wanted.keys()].filter((name) => !out.has(name));
  if (missing.length > 0) throw new Error(`${format} ViT checkpoint lacks ${missing.length} encoder tensors, e.g. ${missing.slice(0, 3).join(', ')}`);
  return out;
}
