import { join } from 'node:path';
import { readSafetensorsHeader, type SafetensorsDtype } from '../../io/safetensors.ts';
import type { DType, ExternalTensor } from '../ir/types.ts';
import { assertInsideModelFolder } from './write.ts';

const FROM_SAFETENSORS: Partial<Record<SafetensorsDtype, DType>> = {
  F32: 'float32', F64: 'float64', F16: 'float16', I64: 'int64', I32: 'int32', BOOL: 'bool', U8: 'uint8',
};

/**
 * External-data references straight into a `.safetensors` file (zero copy; onnxruntime memory-maps it): each tensor's
 * offset is 8 + header length + its data offset. `location` is relative to the model's folder and must stay inside it
 * (onnxruntime 1.30 refuses anything else).
 */
export function safetensorsExternalTensors(modelDir: string, location: string): Map<string, ExternalTensor> {
  assertInsideModelFolder(location);
  const header = readSafetensorsHeader(join(modelDir, location));
  const out = new Map<string, ExternalTensor>();
  for (const t of header.tensors) {
    const dtype = FROM_SAFETENSORS[t.dtype];
    if (!dtype) throw new Error(`${location}: tensor '${t.name}' has dtype ${t.dtype}, which ONNX external data here does not support`);
    out.set(t.name, { dtype, dims: [...t.shape], external: { location, offset: t.byteOffset, length: t.byteLength } });
  }
  return out;
}
