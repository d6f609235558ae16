// Reading a LoRA safetensors file in PEFT key format (`<layer>.lora_A.weight` [r, in], `<layer>.lora_B.weight`
// [out, r]); the scale is alpha / rank from the file's metadata (diffusers' `network_alpha` convention), else the
// metadata's stated `scale`, else 1.
import { loadSafetensors, toFloat32 } from '../../io/safetensors.ts';
import { formatShape, shapesEqual, type AdaptableLinear } from '../inventory.ts';
import type { LoraWeights } from './lora.ts';

const KEY = /^(.*)\.lora_([AB])\.weight$/;

export function readLoraFile(path: string, targets: readonly AdaptableLinear[]): LoraWeights {
  const { tensors, metadata } = loadSafetensors(path);
  const byName = new Map(targets.map((layer) => [layer.name, layer]));
  const parts = new Map<string, { down?: Float32Array; up?: Float32Array; rank?: number }>();
  for (const [key, tensor] of tensors) {
    const match = KEY.exec(key);
    if (!match) throw new Error(`${path}: "${key}" is not a PEFT LoRA key (<layer>.lora_A.weight / <layer>.lora_B.weight)`);
    const [, name, which] = match as unknown as [string, string, 'A' | 'B'];
    const layer = byName.get(name);
    if (!layer) throw new Error(`${path}: "${key}" targets "${name}", which is not an adaptable layer of this model`);
    const rank = which === 'A' ? tensor.shape[0]! : tensor.shape[1]!;
    const expected = which === 'A' ? [rank, layer.inFeatures] : [layer.outFeatures, rank];
    if (!shapesEqual(tensor.shape, expected)) throw new Error(`${path}: "${key}" is ${formatShape(tensor.shape)}, expected ${formatShape(expected)}`);
    const entry = parts.get(name) ?? {};
    if (entry.rank !== undefined && entry.rank !== rank) throw new Error(`${path}: "${name}" has lora_A and lora_B of different ranks`);
    entry.rank = rank;
    entry[which === 'A' ? 'down' : 'up'] = toFloat32(tensor);
    parts.set(name, entry);
  }
  const layers: LoraWeights['layers'] = new Map();
  const ranks = new Set<number>();
  for (const [name, entry] of parts) {
    if (!entry.down || !entry.up) throw new Error(`${path}: "${name}" needs both lora_A and lora_B`);
    layers.set(name, { down: entry.down, up: entry.up, rank: entry.rank! });
    ranks.add(entry.rank!);
  }
  const alpha = metadata.alpha === undefined ? undefined : Number(metadata.alpha);
  if (alpha !== undefined && !Number.isFinite(alpha)) throw new Error(`${path}: metadata alpha "${metadata.alpha}" is not a number`);
  if (alpha !== undefined && ranks.size > 1) throw new Error(`${path}: one alpha for layers of ranks ${[...ranks].join(', ')}`);
  const rank = [...ranks][0] ?? 1;
  if (alpha !== undefined) return { layers, scale: alpha / rank };
  // Without alpha, a writer may still state the scale it merged with; otherwise PEFT's default alpha = rank gives 1.
  const stated = metadata.scale === undefined ? 1 : Number(metadata.scale);
  if (!Number.isFinite(stated)) throw new Error(`${path}: metadata scale "${metadata.scale}" is not a number`);
  return { layers, scale: stated };
}
