// Training checkpoints as one safetensors file: parameters under `param/<name>`, optimizer slots under
// `optimizer/<slot>/<name>`, and the step, optimizer name/config and caller metadata in `__metadata__` (strings only,
// per the format). Everything needed to continue a run bit-for-bit: the schedule is a pure function of the step.
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { float32Tensor, loadSafetensors, writeSafetensors, type Tensor } from '../../io/safetensors.ts';
import type { Optimizer, OptimizerState, ParamSet } from './types.ts';

export const CHECKPOINT_FORMAT = 'hdb-train-checkpoint';
export const CHECKPOINT_VERSION = '1';
const PARAM_PREFIX = 'param/';
const SLOT_PREFIX = 'optimizer/';
/** Keys of `__metadata__` this module owns; caller metadata may not reuse them. */
const RESERVED_KEYS = ['format', 'version', 'step', 'optimizer', 'optimizerConfig'] as const;

export interface TrainingCheckpoint {
  params: ParamSet;
  /** Shape of each parameter (row-major); a checkpoint without shapes could not be mapped back onto a graph. */
  shapes: Record<string, readonly number[]>;
  optimizer: { name: string; config: object; state: OptimizerState };
  /** Free-form strings (run id, base model, schedule description...). */
  metadata?: Record<string, string>;
}

const metadataSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(CHECKPOINT_VERSION),
    step: z.string().regex(/^\d+$/, 'step must be a non-negative integer'),
    optimizer: z.string().min(1),
    optimizerConfig: z.string(),
  })
  .catchall(z.string());

function size(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function saveCheckpoint(path: string, checkpoint: TrainingCheckpoint): void {
  const { params, shapes, optimizer, metadata = {} } = checkpoint;
  for (const key of RESERVED_KEYS) {
    if (key in metadata) throw new Error(`checkpoint: metadata key "${key}" is reserved`);
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, data] of Object.entries(params)) {
    const shape = shapes[name];
    if (!shape) throw new Error(`checkpoint: no shape for parameter "${name}"`);
    if (size(shape) !== data.length) throw new Error(`checkpoint: parameter "${name}" has ${data.length} elements, shape [${shape.join(', ')}]`);
    tensors[`${PARAM_PREFIX}${name}`] = float32Tensor([...shape], data);
  }
  for (const [slot, slotParams] of Object.entries(optimizer.state.slots)) {
    for (const [name, data] of Object.entries(slotParams)) {
      const shape = shapes[name];
      if (!shape) throw new Error(`checkpoint: optimizer slot "${slot}" holds "${name}", which is not a parameter`);
      tensors[`${SLOT_PREFIX}${slot}/${name}`] = float32Tensor([...shape], data);
    }
  }
  const header = {
    ...metadata,
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: String(optimizer.state.step),
    optimizer: optimizer.name,
    optimizerConfig: JSON.stringify(optimizer.config),
  };
  // Written beside the target and renamed, so a crash mid-write never leaves a truncated checkpoint in place.
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeSafetensors(temporary, tensors, header);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

export function loadCheckpoint(path: string): Required<TrainingCheckpoint> {
  const { tensors, metadata: raw } = loadSafetensors(path);
  const parsed = metadataSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`checkpoint ${path}: not a training checkpoint (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
  }
  const { format: _format, version: _version, step, optimizer, optimizerConfig, ...metadata } = parsed.data;
  const params: ParamSet = {};
  const shapes: Record<string, number[]> = {};
  const slots: Record<string, ParamSet> = {};
  for (const [key, tensor] of tensors) {
    if (tensor.dtype !== 'F32') throw new Error(`checkpoint ${path}: tensor "${key}" is ${tensor.dtype}, expected F32`);
    const data = tensor.data as Float32Array;
    if (key.startsWith(PARAM_PREFIX)) {
      const name = key.slice(PARAM_PREFIX.length);
      params[name] = data;
      shapes[name] = tensor.shape;
    } else if (key.startsWith(SLOT_PREFIX)) {
      const rest = key.slice(SLOT_PREFIX.length);
      const cut = rest.indexOf('/');
      if (cut <= 0) throw new Error(`checkpoint ${path}: malformed optimizer tensor name "${key}"`);
      const slot = rest.slice(0, cut);
      (slots[slot] ??= {})[rest.slice(cut + 1)] = data;
    } else {
      throw new Error(`checkpoint ${path}: unexpected tensor "${key}"`);
    }
  }
  for (const [slot, slotParams] of Object.entries(slots)) {
    for (const name of Object.keys(slotParams)) {
      if (!(name in params)) throw new Error(`checkpoint ${path}: optimizer slot "${slot}" holds "${name}", which is not a parameter`);
    }
  }
  let config: Record<string, unknown>;
  try {
    config = z.record(z.string(), z.unknown()).parse(JSON.parse(optimizerConfig));
  } catch {
    throw new Error(`checkpoint ${path}: optimizerConfig is not a JSON object`);
  }
  return { params, shapes, optimizer: { name: optimizer, config, state: { step: Number(step), slots } }, metadata };
}

/**
 * Checks that a loaded optimizer state belongs to `optimizer` (same name, every slot present for every parameter)
 * and returns it, so a resumed run cannot silently start from fresh moments.
 */
export function restoreOptimizerState(optimizer: Optimizer, checkpoint: Pick<TrainingCheckpoint, 'params' | 'optimizer'>): OptimizerState {
  const saved = checkpoint.optimizer;
  if (saved.name !== optimizer.name) throw new Error(`checkpoint: saved with optimizer "${saved.name}", resuming with "${optimizer.name}"`);
  if (JSON.stringify(optimizer.config) !== JSON.stringify(saved.config)) {
    throw new Error(`checkpoint: optimizer config differs (saved ${JSON.stringify(saved.config)}, now ${JSON.stringify(optimizer.config)})`);
  }
  for (const slot of optimizer.slotNames) {
    for (const name of Object.keys(checkpoint.params)) {
      if (!saved.state.slots[slot]?.[name]) throw new Error(`checkpoint: optimizer slot "${slot}" is missing "${name}"`);
    }
  }
  return saved.state;
}
