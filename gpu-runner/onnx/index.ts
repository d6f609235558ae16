// The ONNX engine: build graphs of standard ONNX ops in TypeScript, serialize/read ModelProto, differentiate.
import './ops/all.ts';

export { Graph, Value, type Attrs, type AttrValue, type Node } from './ir/graph.ts';
export * from './ir/types.ts';
export { broadcastShapes } from './ir/shape.ts';
export { defineOp, emit, emit1, knownOps, opDef, type AttrKind, type OpDef, type VjpContext, type VjpRule } from './ops/registry.ts';
export * from './ops/elementwise.ts';
export * from './ops/shape-ops.ts';
export * from './ops/reduce.ts';
export * from './ops/linalg.ts';
export * from './ops/conv.ts';
export * from './ops/resize.ts';
export * from './ops/normalization.ts';
export * from './serialize/write.ts';
export { decodeModel, fromModelProto, loadModel, readModel, type ReadOptions } from './serialize/read.ts';
export { grad, defaultGradName, type GradOptions } from './autodiff/grad.ts';
export { prune } from './ir/prune.ts';
export * from './nn/index.ts';
export { safetensorsExternalTensors } from './serialize/safetensors-external.ts';
