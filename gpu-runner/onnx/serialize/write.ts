import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import type { Graph, Node } from '../ir/graph.ts';
import type { HostTensor, TensorType, TensorValue } from '../ir/types.ts';
import { BYTES_PER_ELEMENT, bytesOf, isExternal, ONNX_DTYPE, sizeOf } from '../ir/types.ts';
import { opDef } from '../ops/registry.ts';
import { ATTRIBUTE_TYPE, DATA_LOCATION_EXTERNAL, ModelProtoType, type AttributeProtoObj, type ModelProtoObj, type NodeProtoObj, type TensorProtoObj, type ValueInfoProtoObj } from './onnx-schema.ts';

/**
 * Opset the engine emits. 21 is the newest default-domain opset whose every op we emit (Gelu-20,
 * LayerNormalization-17, ScatterND-18 with reduction, Reduce*-18 with axes as input, Pad-21) has a CPU kernel in
 * onnxruntime 1.30; IR version 10 is the one that introduced opset 21.
 */
export const OPSET_VERSION = 21;
export const IR_VERSION = 10;
export const PRODUCER_NAME = 'hdb-onnx-engine';
/** Node doc_string that marks a stopGradient Identity (so the mark survives a round trip). */
export const STOP_GRADIENT_MARK = 'stop_gradient';
/** Protobuf messages cannot exceed 2 GiB; models beyond that must keep weights in external data. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;
/** Page alignment for tensors in external data files, so onnxruntime can memory-map them. */
export const EXTERNAL_DATA_ALIGNMENT = 4096;

export interface ExternalDataOptions {
  /** File, relative to the model's folder, that receives in-memory initializers of at least `thresholdBytes`. */
  readonly file: string;
  readonly thresholdBytes?: number;
}

function tensorProto(name: string, t: TensorValue, external?: { location: string; offset: number; length: number }): TensorProtoObj {
  const base: TensorProtoObj = { name, dims: [...t.dims], dataType: ONNX_DTYPE[t.dtype] };
  const ref = isExternal(t) ? t.external : external;
  if (ref) {
    base.dataLocation = DATA_LOCATION_EXTERNAL;
    base.externalData = [
      { key: 'location', value: ref.location },
      { key: 'offset', value: String(ref.offset) },
      { key: 'length', value: String(ref.length) },
    ];
    return base;
  }
  base.rawData = bytesOf((t as HostTensor).data);
  return base;
}

function valueInfo(name: string, type: TensorType): ValueInfoProtoObj {
  return {
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[type.dtype], shape: { dim: type.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attributeProto(node: Node, name: string): AttributeProtoObj {
  const kind = opDef(node.op).attrs[name];
  const value = node.attrs[name]!;
  switch (kind) {
    case 'int':
      return { name, type: ATTRIBUTE_TYPE.int, i: value as number };
    case 'float':
      return { name, type: ATTRIBUTE_TYPE.float, f: value as number };
    case 'ints':
      return { name, type: ATTRIBUTE_TYPE.ints, ints: [...(value as number[])] };
    case 'floats':
      return { name, type: ATTRIBUTE_TYPE.floats, floats: [...(value as number[])] };
    case 'string':
      return { name, type: ATTRIBUTE_TYPE.string, s: new TextEncoder().encode(value as string) };
    case 'tensor':
      return { name, type: ATTRIBUTE_TYPE.tensor, t: tensorProto('', value as HostTensor) };
    default:
      throw new Error(`${node.op}: attribute '${name}' has no declared kind`);
  }
}

function nodeProto(node: Node): NodeProtoObj {
  return {
    name: node.name,
    opType: node.op,
    domain: '',
    input: [...node.inputs],
    output: [...node.outputs],
    attribute: Object.keys(node.attrs).sort().map((a) => attributeProto(node, a)),
    ...(node.stopGradient ? { docString: STOP_GRADIENT_MARK } : {}),
  };
}

/**
 * The graph as a ModelProto object. `externalOf` decides, per in-memory initializer, whether it is stored
 * externally (and where); tensors already external are referenced as they are.
 */
export function toModelProto(g: Graph, externalOf?: (name: string, t: HostTensor) => { location: string; offset: number; length: number } | undefined): ModelProtoObj {
  const initializerNames = new Set(g.initializers.keys());
  const inlineBytes = [...g.initializers].reduce((n, [name, t]) => n + (isExternal(t) || externalOf?.(name, t) ? 0 : t.data.byteLength), 0);
  if (inlineBytes > PROTOBUF_LIMIT_BYTES) {
    throw new Error(`graph '${g.name}': ${inlineBytes} bytes of inline weights exceed protobuf's 2 GiB limit; save with external data`);
  }
  const boundary = new Set([...g.inputs, ...g.outputs]);
  return {
    irVersion: IR_VERSION,
    producerName: PRODUCER_NAME,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    graph: {
      name: g.name,
      node: g.nodes.map(nodeProto),
      initializer: [...g.initializers].map(([name, t]) => tensorProto(name, t, isExternal(t) ? undefined : externalOf?.(name, t))),
      input: g.inputs.map((n) => valueInfo(n, g.value(n).type)),
      output: g.outputs.map((n) => valueInfo(n, g.value(n).type)),
      valueInfo: [...g.values.values()].filter((v) => !boundary.has(v.name) && !initializerNames.has(v.name)).map((v) => valueInfo(v.name, v.type)),
    },
  };
}

export function encodeModel(model: ModelProtoObj): Uint8Array {
  return ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
}

/** Serializes with all in-memory weights inline (models up to 2 GiB). */
export function serializeModel(g: Graph): Uint8Array {
  return encodeModel(toModelProto(g));
}

/** Relative, inside-the-folder locations only: onnxruntime refuses anything else. */
export function assertInsideModelFolder(location: string): void {
  const n = normalize(location);
  if (isAbsolute(n) || n.startsWith('..')) throw new Error(`external data location '${location}' must be relative and inside the model's folder`);
}

/**
 * Writes `<dir>/<fileName>`, with in-memory initializers of at least `thresholdBytes` streamed into one external data
 * file (page-aligned), so the protobuf stays small whatever the weights' size (the path for models over 2 GiB).
 */
export function saveModel(g: Graph, dir: string, fileName: string, external?: ExternalDataOptions): string {
  mkdirSync(dir, { recursive: true });
  const refs = new Map<string, { location: string; offset: number; length: number }>();
  for (const t of g.initializers.values()) if (isExternal(t)) assertInsideModelFolder(t.external.location);
  if (external) {
    assertInsideModelFolder(external.file);
    const threshold = external.thresholdBytes ?? 1024;
    const path = join(dir, external.file);
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, 'w');
    try {
      let offset = 0;
      for (const [name, t] of g.initializers) {
        if (isExternal(t) || t.data.byteLength < threshold) continue;
        offset = Math.ceil(offset / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
        writeFully(fd, bytesOf(t.data), offset);
        refs.set(name, { location: external.file, offset, length: t.data.byteLength });
        offset += t.data.byteLength;
      }
    } finally {
      closeSync(fd);
    }
  }
  const bytes = encodeModel(toModelProto(g, (name) => refs.get(name)));
  const modelPath = join(dir, fileName);
  const fd = openSync(modelPath, 'w');
  try {
    writeFully(fd, bytes, 0);
  } finally {
    closeSync(fd);
  }
  return modelPath;
}

/** Node's writeSync moves at most ~2 GiB per call; loop until every byte is written. */
function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  const CHUNK = 1 << 30;
  for (let done = 0; done < bytes.byteLength; ) {
    const n = writeSync(fd, bytes, done, Math.min(CHUNK, bytes.byteLength - done), position + done);
    done += n;
  }
}

export function expectedByteLength(t: { dtype: keyof typeof BYTES_PER_ELEMENT; dims: readonly number[] }): number {
  return sizeOf(t.dims) * BYTES_PER_ELEMENT[t.dtype];
}
