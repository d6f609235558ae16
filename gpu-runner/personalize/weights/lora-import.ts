// Import of kohya and PEFT/diffusers LoRA files onto a known layer list: per layer, a LoRA pair and its scale.
import { parseSafetensors, type Tensor, toFloat32 } from '../../io/safetensors.ts';
import type { AdaptedLayer } from '../lidb/adapted-layers.ts';
import type { LoraFactors } from '../lidb/delta.ts';
import { KOHYA_SUFFIX, kohyaModuleKey, PEFT_SUFFIX, peftModuleKey } from './lora-names.ts';
import type { LoraFormat } from './lora-export.ts';

export interface ImportedLoraLayer {
  readonly layer: AdaptedLayer;
  readonly lora: LoraFactors;
  /** Multiplies up · down: alpha / rank (kohya `.alpha`, or `alpha` and `rank` in PEFT metadata), else 1. */
  readonly scale: number;
}

export interface ImportedLora {
  readonly format: LoraFormat;
  readonly layers: ImportedLoraLayer[];
}

export class LoraImportError extends Error {
  constructor(message: string) {
    super(`LoRA import: ${message}`);
    this.name = 'LoraImportError';
  }
}

function matrix(tensors: Map<string, Tensor>, key: string, rows: number | undefined, cols: number | undefined): Float32Array {
  const tensor = tensors.get(key);
  if (!tensor) throw new LoraImportError(`tensor "${key}" is missing`);
  if (tensor.shape.length !== 2) throw new LoraImportError(`"${key}" must be 2-D, got [${tensor.shape.join(', ')}]`);
  const [r, c] = tensor.shape as [number, number];
  if ((rows !== undefined && r !== rows) || (cols !== undefined && c !== cols)) {
    throw new LoraImportError(`"${key}" has shape [${r}, ${c}], expected [${rows ?? 'rank'}, ${cols ?? 'rank'}]`);
  }
  return Float32Array.from(toFloat32(tensor));
}

function factorsFor(tensors: Map<string, Tensor>, layer: AdaptedLayer, downKey: string, upKey: string): LoraFactors {
  const downTensor = tensors.get(downKey);
  const rank = downTensor?.shape[0];
  if (rank === undefined) throw new LoraImportError(`tensor "${downKey}" is missing`);
  return {
    rank,
    down: matrix(tensors, downKey, rank, layer.inFeatures),
    up: matrix(tensors, upKey, layer.outFeatures, rank),
  };
}

/** Reads a kohya or PEFT LoRA file. Unknown target modules are an error (a LoRA for another model must not half-load). */
export function importLora(bytes: Uint8Array, layers: readonly AdaptedLayer[]): ImportedLora {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, 'LoRA file');
  } catch (error) {
    throw new LoraImportError(`not a readable safetensors file (${(error as Error).message})`);
  }
  const { tensors, header } = parsed;
  const keys = [...tensors.keys()];
  if (keys.some((key) => key.endsWith(KOHYA_SUFFIX.down))) return importKohya(tensors, layers);
  if (keys.some((key) => key.endsWith(PEFT_SUFFIX.down))) return importPeft(tensors, header.metadata, layers);
  throw new LoraImportError('no `.lora_down.weight` (kohya) or `.lora_A.weight` (PEFT/diffusers) tensors found');
}

function importKohya(tensors: Map<string, Tensor>, layers: readonly AdaptedLayer[]): ImportedLora {
  const byKey = new Map(layers.map((layer) => [kohyaModuleKey(layer), layer]));
  const result: ImportedLoraLayer[] = [];
  for (const key of tensors.keys()) {
    if (!key.endsWith(KOHYA_SUFFIX.down)) continue;
    const module = key.slice(0, -KOHYA_SUFFIX.down.length);
    const layer = byKey.get(module);
    if (!layer) throw new LoraImportError(`"${module}" is not an adapted layer of this base model`);
    const lora = factorsFor(tensors, layer, key, module + KOHYA_SUFFIX.up);
    const alpha = tensors.get(module + KOHYA_SUFFIX.alpha);
    const scale = alpha ? toFloat32(alpha)[0]! / lora.rank : 1;
    result.push({ layer, lora, scale });
  }
  return { format: 'kohya', layers: ordered(result, layers) };
}

function importPeft(tensors: Map<string, Tensor>, metadata: Record<string, string>, layers: readonly AdaptedLayer[]): ImportedLora {
  const byKey = new Map<string, AdaptedLayer>();
  for (const layer of layers) {
    byKey.set(peftModuleKey(layer), layer);
    // Bare module paths (no component prefix, as in PEFT's own UNet-only files) name UNet modules.
    if (layer.component === 'unet') byKey.set(layer.modulePath, layer);
  }
  const rank = Number(metadata.rank);
  const alpha = Number(metadata.alpha);
  const scale = Number.isFinite(rank) && Number.isFinite(alpha) && rank > 0 ? alpha / rank : 1;
  const result: ImportedLoraLayer[] = [];
  for (const key of tensors.keys()) {
    if (!key.endsWith(PEFT_SUFFIX.down)) continue;
    const module = key.slice(0, -PEFT_SUFFIX.down.length);
    const layer = byKey.get(module);
    if (!layer) throw new LoraImportError(`"${module}" is not an adapted layer of this base model`);
    result.push({ layer, lora: factorsFor(tensors, layer, key, module + PEFT_SUFFIX.up), scale });
  }
  return { format: 'peft', layers: ordered(result, layers) };
}

function ordered(found: ImportedLoraLayer[], layers: readonly AdaptedLayer[]): ImportedLoraLayer[] {
  const index = new Map(layers.map((layer, i) => [layer.name, i]));
  return found.sort((x, y) => index.get(x.layer.name)! - index.get(y.layer.name)!);
}
