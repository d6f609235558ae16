import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Graph, type AttrValue, type Node } from '../ir/graph.ts';
import type { Dim, TensorType, TensorValue } from '../ir/types.ts';
import { dtypeFromOnnx, typedFromBytes } from '../ir/types.ts';
import { checkAttrs, inferTypes, opDef } from '../ops/registry.ts';
import '../ops/all.ts';
import { ATTRIBUTE_TYPE, DATA_LOCATION_EXTERNAL, ModelProtoType, type AttributeProtoObj, type ModelProtoObj, type TensorProtoObj, type ValueInfoProtoObj } from './onnx-schema.ts';
import { assertInsideModelFolder, STOP_GRADIENT_MARK } from './write.ts';

export function decodeModel(bytes: Uint8Array): ModelProtoObj {
  return ModelProtoType.toObject(ModelProtoType.decode(bytes), { longs: Number, bytes: Uint8Array, defaults: false }) as ModelProtoObj;
}

function tensorFromProto(t: TensorProtoObj, baseDir: string | undefined, loadExternal: boolean): TensorValue {
  const dtype = dtypeFromOnnx(t.dataType ?? 0);
  const dims = (t.dims ?? []).map(Number);
  if (t.dataLocation === DATA_LOCATION_EXTERNAL) {
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = kv.get('location');
    if (!location) throw new Error(`initializer '${t.name}': external data without a location`);
    assertInsideModelFolder(location);
    const offset = Number(kv.get('offset') ?? 0);
    const length = Number(kv.get('length') ?? 0);
    if (!loadExternal) return { dtype, dims, external: { location, offset, length } };
    if (!baseDir) throw new Error(`initializer '${t.name}': loading external data needs the model's folder`);
    const file = readFileSync(join(baseDir, location));
    return { dtype, dims, data: typedFromBytes(dtype, file.subarray(offset, offset + length)) };
  }
  if (t.rawData && t.rawData.byteLength > 0) return { dtype, dims, data: typedFromBytes(dtype, new Uint8Array(t.rawData)) };
  // typed repeated fields (writers other than ours)
  const values: number[] = t.floatData ?? t.doubleData ?? t.int64Data ?? t.int32Data ?? [];
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`initializer '${t.name}': ${values.length} values for ${count} elements`);
  if (dtype === 'int64') return { dtype, dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
  if (dtype === 'float32') return { dtype, dims, data: Float32Array.from(values) };
  if (dtype === 'float64') return { dtype, dims, data: Float64Array.from(values) };
  if (dtype === 'int32') return { dtype, dims, data: Int32Array.from(values) };
  if (dtype === 'bool' || dtype === 'uint8') return { dtype, dims, data: Uint8Array.from(values) };
  return { dtype, dims, data: Uint16Array.from(values) };
}

function typeFromProto(v: ValueInfoProtoObj): TensorType {
  const tt = v.type?.tensorType;
  if (!tt) throw new Error(`value '${v.name}' is not a tensor`);
  const shape: Dim[] = (tt.shape?.dim ?? []).map((d) => (d.dimParam !== undefined && d.dimParam !== '' ? d.dimParam : Number(d.dimValue ?? 0)));
  return { dtype: dtypeFromOnnx(tt.elemType ?? 0), shape };
}

function attrFromProto(a: AttributeProtoObj): AttrValue {
  switch (a.type) {
    case ATTRIBUTE_TYPE.int:
      return Number(a.i ?? 0);
    case ATTRIBUTE_TYPE.float:
      return a.f ?? 0;
    case ATTRIBUTE_TYPE.ints:
      return (a.ints ?? []).map(Number);
    case ATTRIBUTE_TYPE.floats:
      return [...(a.floats ?? [])];
    case ATTRIBUTE_TYPE.string:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    case ATTRIBUTE_TYPE.tensor: {
      const t = tensorFromProto(a.t ?? {}, undefined, false);
      if ('external' in t) throw new Error(`attribute '${a.name}': external tensors are not supported in attributes`);
      return t;
    }
    default:
      throw new Error(`attribute '${a.name}': unsupported attribute type ${a.type}`);
  }
}

export interface ReadOptions {
  /** Folder of the model file, for loading external data. */
  readonly baseDir?: string;
  /** Read external tensors into memory (default: keep them as external references). */
  readonly loadExternal?: boolean;
}

/**
 * Rebuilds a Graph from a ModelProto. Types of intermediate values are re-inferred with the op table, so every op
 * must be known to the engine, and checked against the stored value_info.
 */
export function fromModelProto(model: ModelProtoObj, options: ReadOptions = {}): Graph {
  const gp = model.graph;
  if (!gp) throw new Error('model has no graph');
  const opset = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '');
  if (!opset || Number(opset.version) < 18) throw new Error(`model opset ${String(opset?.version)} is older than 18, which the engine's op table assumes`);
  const g = new Graph(gp.name ?? 'graph');
  for (const t of gp.initializer ?? []) g.param(t.name ?? '', tensorFromProto(t, options.baseDir, options.loadExternal ?? false));
  for (const v of gp.input ?? []) {
    if (g.has(v.name ?? '')) continue; // IR < 4 lists initializers among inputs
    g.input(v.name ?? '', typeFromProto(v).dtype, typeFromProto(v).shape);
  }
  const stored = new Map((gp.valueInfo ?? []).concat(gp.output ?? []).map((v) => [v.name ?? '', v]));
  for (const np of gp.node ?? []) {
    if ((np.domain ?? '') !== '') throw new Error(`node '${np.name}': domain '${np.domain}' is not supported`);
    const op = np.opType ?? '';
    const def = opDef(op);
    const attrs: Record<string, AttrValue> = {};
    for (const a of np.attribute ?? []) attrs[a.name ?? ''] = attrFromProto(a);
    checkAttrs(def, attrs);
    const inputs = (np.input ?? []).map((n) => (n === '' ? undefined : g.value(n)));
    const types = inferTypes(g, def, inputs, attrs);
    const outputs = np.output ?? [];
    outputs.forEach((name, i) => {
      const known = stored.get(name);
      const type = types[i]!;
      if (known) {
        const k = typeFromProto(known);
        if (k.dtype !== type.dtype || k.shape.length !== type.shape.length || k.shape.some((d, j) => typeof d === 'number' && d !== type.shape[j])) {
          throw new Error(`node '${np.name}' (${op}): stored type of '${name}' disagrees with the inferred one`);
        }
      }
      if (name !== '') g.declare(name, type);
    });
    const node: Node = { op, name: np.name ?? '', inputs: np.input ?? [], outputs, attrs, ...(np.docString === STOP_GRADIENT_MARK ? { stopGradient: true } : {}) };
    g.pushNode(node);
  }
  for (const v of gp.output ?? []) g.outputs.push(g.value(v.name ?? '').name);
  return g;
}

export function readModel(bytes: Uint8Array, options: ReadOptions = {}): Graph {
  return fromModelProto(decodeModel(bytes), options);
}

export function loadModel(path: string, options: Omit<ReadOptions, 'baseDir'> = {}): Graph {
  return readModel(readFileSync(path), { ...options, baseDir: join(path, '..') });
}
