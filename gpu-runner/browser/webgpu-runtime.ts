// onnxruntime-web's WebGPU build (its JSEP WebAssembly, ≈28 MB against the plain build's ≈14 MB), loaded at run time
// and only when the device mode samples on WebGPU: the bundle carries the WebAssembly build alone, so the plain path
// never downloads this one (bench:browser's first-load target, docs/targets.md). scripts/build-device.ts copies the
// files beside the WebAssembly build and serves the WebAssembly in parts (Workers Static Assets' per-file limit).
import { Graph, add, serializeModel } from '../onnx/index.ts';
import { WEBGPU_LOG_SEVERITY, type OrtModule } from '../onnx/runtime/browser/session-host.ts';
import type { OrtWebGpuFiles } from './protocol.ts';

export interface WebGpuRuntimeOptions {
  /** URL folder holding onnxruntime-web's files (the manifest's `ortBase`). */
  readonly base: string;
  readonly files: OrtWebGpuFiles;
  /** The adapter the page inspected: onnxruntime creates its device on this one, not on one it asks for again. */
  readonly adapter: unknown;
  readonly threads: number;
}

/** The probe: y = x + x on a few numbers, checked exactly (small integers add exactly in float32 on any GPU). */
const PROBE_VALUES = Float32Array.from([0, 1, 2, 3, -4, 5, 6, 7]);

function probeModel(): Uint8Array {
  const g = new Graph('webgpu_probe');
  const x = g.input('x', 'float32', [PROBE_VALUES.length]);
  g.output(add(x, x), 'y');
  return serializeModel(g);
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

function joined(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Loads the WebGPU build and proves it: a session on WebGPU alone (no WebAssembly fallback to hide behind) runs the
 * probe and returns its numbers. Throws with the reason when the build, the device or the kernel fails.
 */
export async function loadWebGpuRuntime(options: WebGpuRuntimeOptions): Promise<OrtModule> {
  const url = (file: string) => new URL(file, options.base).href;
  const [api, ...parts] = await Promise.all([import(url(options.files.api)) as Promise<OrtModule>, ...options.files.wasmParts.map((part) => fetchBytes(url(part)))]);
  // The loader (.mjs) comes from the folder; the WebAssembly is handed over whole, having arrived in parts.
  api.env.wasm.wasmPaths = options.base;
  api.env.wasm.wasmBinary = joined(parts);
  api.env.wasm.numThreads = options.threads;
  (api.env.webgpu as { adapter: unknown }).adapter = options.adapter;
  const session = await api.InferenceSession.create(probeModel(), { executionProviders: ['webgpu'], logSeverityLevel: WEBGPU_LOG_SEVERITY });
  try {
    const { y } = await session.run({ x: new api.Tensor('float32', PROBE_VALUES, [PROBE_VALUES.length]) });
    const got = y!.data as Float32Array;
    if (!PROBE_VALUES.every((value, i) => got[i] === value * 2)) throw new Error(`WebGPU computed x + x wrongly: ${[...got].join(', ')}`);
  } finally {
    await session.release();
  }
  return api;
}
