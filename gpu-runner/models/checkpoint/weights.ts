// A model's weights, checked against its inventory, kept on disk: each tensor is located inside its safetensors file
// (absolute byte offset), so a graph can reference it as ONNX external data without copying (docs/engine.md), or read
// it into memory when a small model is built inline.
import { relative, sep } from 'node:path';
import { SafetensorsFile, type TensorInfo, toFloat32 } from '../../io/safetensors.ts';
import type { ParameterSpec, TensorShape } from '../inventory.ts';
import { compareInventory, describeDiff, isCleanDiff } from './compare.ts';

/** The element types a checkpoint may store parameters in: the runtime computes in float32 either way. */
export type StoredDtype = 'float32' | 'float16';

export interface StoredTensor {
  /** The model's parameter name (after any legacy rename). */
  name: string;
  /** The key in the file (differs from `name` only for renamed legacy keys). */
  key: string;
  dtype: StoredDtype;
  shape: TensorShape;
  /** The safetensors file holding it (absolute path). */
  file: string;
  /** Absolute byte offset of the first element: 8 + header length + data offset. */
  byteOffset: number;
  byteLength: number;
}

export interface OpenWeightsOptions {
  /** Maps a file key to the model's parameter name (e.g. legacy VAE attention names). */
  rename?: (key: string) => string;
  /** Keys a checkpoint may hold that are not parameters (e.g. CLIP's `position_ids` buffer); skipped. */
  ignore?: readonly string[];
  /** A label for error messages, e.g. `unet`. */
  label?: string;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const SAFETENSORS_TO_STORED: Readonly<Record<string, StoredDtype>> = { F32: 'float32', F16: 'float16' };

export class ModelWeights {
  private constructor(
    readonly label: string,
    private readonly byName: Map<string, StoredTensor>,
    readonly inventory: readonly ParameterSpec[],
  ) {}

  /**
   * Opens one or more safetensors files (sharded checkpoints list several) and checks that they hold exactly the
   * inventory, naming every missing, mis-shaped or unexpected tensor otherwise.
   */
  static open(files: readonly string[], inventory: readonly ParameterSpec[], options: OpenWeightsOptions = {}): ModelWeights {
    const label = options.label ?? 'checkpoint';
    const rename = options.rename ?? ((key: string) => key);
    const ignore = new Set(options.ignore ?? []);
    const stored: StoredTensor[] = [];
    for (const file of files) {
      const opened = SafetensorsFile.open(file);
      const { tensors } = opened.header;
      opened.close();
      for (const info of tensors) {
        if (ignore.has(info.name)) continue;
        stored.push(storedTensor(label, rename(info.name), info, file));
      }
    }
    return ModelWeights.fromStored(label, stored, inventory);
  }

  /**
   * Weights from tensors already located (e.g. one network's share of a single-file checkpoint), checked against the
   * inventory the same way; `describe` names a tensor in errors (default: its parameter name).
   */
  static fromStored(
    label: string,
    stored: readonly StoredTensor[],
    inventory: readonly ParameterSpec[],
    describe: (tensor: StoredTensor) => string = (tensor) => tensor.name,
  ): ModelWeights {
    const byName = new Map<string, StoredTensor>();
    for (const tensor of stored) {
      if (byName.has(tensor.name)) throw new CheckpointError(`${label}: tensor "${tensor.name}" appears twice (${tensor.file})`);
      byName.set(tensor.name, tensor);
    }
    const diff = compareInventory(
      inventory,
      [...byName.values()].map((t) => ({ name: t.name, shape: t.shape })),
    );
    diff.unexpected = diff.unexpected.map((name) => describe(byName.get(name)!));
    if (!isCleanDiff(diff)) throw new CheckpointError(`${label}: checkpoint does not fit the model config: ${describeDiff(diff)}`);
    return new ModelWeights(label, byName, inventory);
  }

  get names(): string[] {
    return this.inventory.map((spec) => spec.name);
  }

  tensor(name: string): StoredTensor {
    const stored = this.byName.get(name);
    if (!stored) throw new CheckpointError(`${this.label}: no parameter named "${name}"`);
    return stored;
  }

  /** The dtype all parameters share, or 'mixed'. */
  get dtype(): StoredDtype | 'mixed' {
    const dtypes = new Set([...this.byName.values()].map((t) => t.dtype));
    return dtypes.size === 1 ? [...dtypes][0]! : 'mixed';
  }

  /** Reads one parameter into memory as float32 (fp16 widened exactly). */
  readFloat32(name: string): Float32Array {
    const stored = this.tensor(name);
    const file = SafetensorsFile.open(stored.file);
    try {
      return toFloat32(file.read(stored.key));
    } finally {
      file.close();
    }
  }

  /** Reads every parameter into memory as float32, one open per file. */
  readAllFloat32(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    const byFile = new Map<string, StoredTensor[]>();
    for (const stored of this.byName.values()) byFile.set(stored.file, [...(byFile.get(stored.file) ?? []), stored]);
    for (const [path, stored] of byFile) {
      const file = SafetensorsFile.open(path);
      try {
        for (const t of stored) out.set(t.name, toFloat32(file.read(t.key)));
      } finally {
        file.close();
      }
    }
    return out;
  }

  /**
   * The external-data location of a parameter for a model file written in `modelDir`: onnxruntime only accepts a
   * relative path inside the model's folder, so the safetensors file must sit at or below `modelDir`.
   */
  externalLocation(name: string, modelDir: string): { location: string; offset: number; length: number } {
    const stored = this.tensor(name);
    const location = relative(modelDir, stored.file);
    if (location.startsWith('..') || location === '' || location.startsWith(sep)) {
      throw new CheckpointError(`${this.label}: ${stored.file} is not inside the model folder ${modelDir}`);
    }
    return { location: location.split(sep).join('/'), offset: stored.byteOffset, length: stored.byteLength };
  }
}

/** Locates one tensor of a safetensors file under the parameter name `name` (shape `shape`, default the stored one). */
export function storedTensor(label: string, name: string, info: TensorInfo, file: string, shape: TensorShape = info.shape): StoredTensor {
  const dtype = SAFETENSORS_TO_STORED[info.dtype];
  if (!dtype) throw new CheckpointError(`${label}: tensor "${info.name}" is ${info.dtype}; only F32 and F16 checkpoints are supported`);
  return { name, key: info.name, dtype, shape, file, byteOffset: info.byteOffset, byteLength: info.byteLength };
}
