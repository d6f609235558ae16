// Fresh VAE weights, and the pack's files in the diffusers layout (`vae/config.json` + `diffusion_pytorch_model.safetensors`).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { float16BitsToFloat32, float32ToFloat16Bits, loadSafetensors, serializeSafetensors, toFloat32, type Tensor } from '../../io/safetensors.ts';
import { vaeInventory } from '../../models/vae/inventory.ts';
import { numelOf } from '../../models/inventory.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import type { ParamSet } from '../../onnx/optim/index.ts';
import { worldVae, type VaeConfigJson, type WorldVae } from './vae-config.ts';

export const VAE_WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
export const VAE_CONFIG_FILE = 'config.json';

/**
 * torch's default init for Conv2d/Linear (kaiming-uniform, a = √5: U(±1/√fan_in) for weight and bias) matched in
 * variance by a seeded Gaussian (std 1/√(3·fan_in)); GroupNorm weight 1, bias 0 — what diffusers starts a VAE from.
 */
export function initVaeParams(vae: WorldVae, seed: number): ParamSet {
  const params: ParamSet = {};
  const fanIns = new Map<string, number>();
  for (const spec of vaeInventory(vae.plan)) {
    if (spec.shape.length > 1) fanIns.set(spec.name.replace(/\.weight$/, ''), numelOf(spec.shape) / spec.shape[0]!);
  }
  for (const spec of vaeInventory(vae.plan)) {
    const count = numelOf(spec.shape);
    const module = spec.name.replace(/\.(weight|bias)$/, '');
    const fanIn = fanIns.get(module);
    if (fanIn === undefined) {
      // A norm layer: its weight and bias are 1-D and belong to no conv/linear module.
      params[spec.name] = new Float32Array(count).fill(spec.name.endsWith('.weight') ? 1 : 0);
      continue;
    }
    params[spec.name] = fillGaussianFloat32(namedRng(seed, `world-vae/${spec.name}`), count, 1 / Math.sqrt(3 * fanIn));
  }
  return params;
}

/** What fp16 storage would do to the weights (rounded to the nearest half), to check the gate still holds. */
export function roundToFloat16(params: ParamSet): ParamSet {
  return Object.fromEntries(Object.entries(params).map(([n, d]) => [n, float16BitsToFloat32(float32ToFloat16Bits(d))]));
}

export interface VaePackFiles {
  readonly dir: string;
  readonly dtype: 'F16' | 'F32';
  readonly bytes: number;
}

/** Writes `config.json` (with the measured scaling factor) and the weights, names and shapes from the inventory. */
export function writeVaePack(dir: string, vae: WorldVae, params: ParamSet, scalingFactor: number, dtype: 'F16' | 'F32', metadata: Record<string, string> = {}): VaePackFiles {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  for (const spec of vaeInventory(vae.plan)) {
    const data = params[spec.name];
    if (!data) throw new Error(`VAE weights lack "${spec.name}"`);
    tensors[spec.name] = dtype === 'F16' ? { dtype: 'F16', shape: [...spec.shape], data: float32ToFloat16Bits(data) } : { dtype: 'F32', shape: [...spec.shape], data };
  }
  const bytes = serializeSafetensors(tensors, { format: 'pt', ...metadata });
  writeFileSync(join(dir, VAE_WEIGHTS_FILE), bytes);
  writeFileSync(join(dir, VAE_CONFIG_FILE), `${JSON.stringify({ ...vae.json, scaling_factor: scalingFactor }, null, 2)}\n`);
  return { dir, dtype, bytes: bytes.byteLength };
}

/** Reads a VAE written by `writeVaePack` (or any diffusers AutoencoderKL of the same config) as float32 arrays. */
export function readVaePack(dir: string): { vae: WorldVae; params: ParamSet; scalingFactor: number } {
  const json = JSON.parse(readFileSync(join(dir, VAE_CONFIG_FILE), 'utf8')) as VaeConfigJson;
  const vae = worldVae(json, typeof json.sample_size === 'number' ? json.sample_size : undefined);
  const { tensors } = loadSafetensors(join(dir, VAE_WEIGHTS_FILE));
  const params: ParamSet = {};
  for (const spec of vaeInventory(vae.plan)) {
    const t = tensors.get(spec.name);
    if (!t) throw new Error(`${dir}: missing tensor ${spec.name}`);
    if (t.shape.join() !== spec.shape.join()) throw new Error(`${dir}: ${spec.name} is [${t.shape}], expected [${spec.shape}]`);
    params[spec.name] = toFloat32(t);
  }
  return { vae, params, scalingFactor: vae.config.scalingFactor };
}
