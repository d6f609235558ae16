// Fresh base-model weights, and the pack's files in the diffusers/transformers layout: `unet/config.json` +
// `unet/diffusion_pytorch_model.safetensors`, `text_encoder/config.json` + `text_encoder/model.safetensors`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { float32ToFloat16Bits, loadSafetensors, serializeSafetensors, toFloat32, type Tensor } from '../../io/safetensors.ts';
import { clipTextInventory } from '../../models/clip-text/inventory.ts';
import { numelOf, type ParameterSpec } from '../../models/inventory.ts';
import { unetInventory } from '../../models/unet/inventory.ts';
import type { ParamSet } from '../../onnx/optim/index.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { BASE_FILES, BASE_FOLDERS, baseModel, type BaseModel } from './base-config.ts';

/**
 * diffusers builds the UNet with torch's default init (kaiming-uniform, a = √5: U(±1/√fan_in) for weight and bias),
 * matched in variance by a seeded Gaussian (std 1/√(3·fan_in)); norms weight 1, bias 0.
 */
function initTorchDefault(specs: readonly ParameterSpec[], seed: number, tag: string, params: ParamSet): void {
  const fanIns = new Map<string, number>();
  for (const spec of specs) {
    if (spec.shape.length > 1) fanIns.set(spec.name.replace(/\.weight$/, ''), numelOf(spec.shape) / spec.shape[0]!);
  }
  for (const spec of specs) {
    const count = numelOf(spec.shape);
    const fanIn = fanIns.get(spec.name.replace(/\.(weight|bias)$/, ''));
    if (fanIn === undefined) {
      params[spec.name] = new Float32Array(count).fill(spec.name.endsWith('.weight') ? 1 : 0);
      continue;
    }
    params[spec.name] = fillGaussianFloat32(namedRng(seed, `${tag}/${spec.name}`), count, 1 / Math.sqrt(3 * fanIn));
  }
}

/**
 * transformers' `CLIPPreTrainedModel._init_weights` (factor 1): embeddings N(0, 0.02²); q/k/v/fc2 N(0, (h^-½·(2L)^-½)²),
 * out_proj N(0, h^-1), fc1 N(0, (2h)^-1); biases 0; LayerNorms weight 1, bias 0.
 */
function initClipText(model: BaseModel, seed: number, params: ParamSet): void {
  const h = model.text.hiddenSize;
  const layers = model.text.numHiddenLayers;
  const inProjStd = h ** -0.5 * (2 * layers) ** -0.5;
  for (const spec of clipTextInventory(model.text)) {
    const count = numelOf(spec.shape);
    const gaussian = (std: number) => fillGaussianFloat32(namedRng(seed, `world-base/text/${spec.name}`), count, std);
    if (spec.name.endsWith('embedding.weight')) params[spec.name] = gaussian(0.02);
    else if (spec.shape.length === 1) params[spec.name] = new Float32Array(count).fill(/layer_norm|final_layer_norm/.test(spec.name) && spec.name.endsWith('.weight') ? 1 : 0);
    else if (/self_attn\.(q|k|v)_proj/.test(spec.name) || spec.name.includes('mlp.fc2')) params[spec.name] = gaussian(inProjStd);
    else if (spec.name.includes('out_proj')) params[spec.name] = gaussian(h ** -0.5);
    else if (spec.name.includes('mlp.fc1')) params[spec.name] = gaussian((2 * h) ** -0.5);
    else throw new Error(`no initialization rule for text encoder parameter "${spec.name}"`);
  }
}

export function initBaseParams(model: BaseModel, seed: number): ParamSet {
  const params: ParamSet = {};
  initTorchDefault(unetInventory(model.unet), seed, 'world-base/unet', params);
  initClipText(model, seed, params);
  return params;
}

export interface BasePackFiles {
  readonly unetBytes: number;
  readonly textEncoderBytes: number;
}

function weightsFile(specs: readonly ParameterSpec[], params: ParamSet, dtype: 'F16' | 'F32', metadata: Record<string, string>): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const spec of specs) {
    const data = params[spec.name];
    if (!data) throw new Error(`base weights lack "${spec.name}"`);
    if (data.length !== numelOf(spec.shape)) throw new Error(`base weight "${spec.name}" has ${data.length} values, [${spec.shape}] needs ${numelOf(spec.shape)}`);
    tensors[spec.name] = dtype === 'F16' ? { dtype: 'F16', shape: [...spec.shape], data: float32ToFloat16Bits(data) } : { dtype: 'F32', shape: [...spec.shape], data };
  }
  return serializeSafetensors(tensors, { format: 'pt', ...metadata });
}

/** Writes `unet/` and `text_encoder/` (config.json + weights) into the diffusers folder `packDir`. */
export function writeBasePack(packDir: string, model: BaseModel, params: ParamSet, dtype: 'F16' | 'F32', metadata: Record<string, string> = {}): BasePackFiles {
  const write = (folder: string, file: string, json: Record<string, unknown>, bytes: Uint8Array) => {
    const dir = join(packDir, folder);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), bytes);
    writeFileSync(join(dir, BASE_FILES.config), `${JSON.stringify(json, null, 2)}\n`);
    return bytes.byteLength;
  };
  const unetBytes = write(BASE_FOLDERS.unet, BASE_FILES.unetWeights, model.unetJson, weightsFile(unetInventory(model.unet), params, dtype, metadata));
  const textEncoderBytes = write(BASE_FOLDERS.textEncoder, BASE_FILES.textEncoderWeights, model.textJson, weightsFile(clipTextInventory(model.text), params, dtype, metadata));
  return { unetBytes, textEncoderBytes };
}

/** Reads `unet/` and `text_encoder/` written by `writeBasePack` as float32 arrays (one set, names as in the checkpoints). */
export function readBasePack(packDir: string): { model: BaseModel; params: ParamSet } {
  const json = (folder: string) => JSON.parse(readFileSync(join(packDir, folder, BASE_FILES.config), 'utf8')) as Record<string, unknown>;
  const model = baseModel(json(BASE_FOLDERS.unet), json(BASE_FOLDERS.textEncoder));
  const params: ParamSet = {};
  const read = (folder: string, file: string, specs: readonly ParameterSpec[]) => {
    const { tensors } = loadSafetensors(join(packDir, folder, file));
    for (const spec of specs) {
      const t = tensors.get(spec.name);
      if (!t) throw new Error(`${folder}/${file}: missing tensor ${spec.name}`);
      if (t.shape.join() !== spec.shape.join()) throw new Error(`${folder}/${file}: ${spec.name} is [${t.shape}], expected [${spec.shape}]`);
      params[spec.name] = toFloat32(t);
    }
  };
  read(BASE_FOLDERS.unet, BASE_FILES.unetWeights, unetInventory(model.unet));
  read(BASE_FOLDERS.textEncoder, BASE_FILES.textEncoderWeights, clipTextInventory(model.text));
  return { model, params };
}
