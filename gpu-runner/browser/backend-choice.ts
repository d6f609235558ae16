// Which onnxruntime-web backend the device mode samples on. The trainers (prediction, the VAE encoder, the finetune's
// gradient and Adam graphs) always stay on WebAssembly, so the device weights keep matching the runner's
// (test/e2e/device.test.ts); only the sampler's networks may move to WebGPU, and only when the browser offers a real
// GPU: a fallback adapter is a CPU rasterizer (Chromium's SwiftShader reports `info.isFallbackAdapter: true`), slower
// than onnxruntime's own WebAssembly kernels for the same work.
import { SESSION_KINDS, type JobSessionKind } from '../models/session-kinds.ts';

/** What the page asks for: `auto` picks WebGPU on a hardware adapter; the others force one backend. */
export type BackendPreference = 'auto' | 'webgpu' | 'wasm';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'webgpu', 'wasm'];

/** The WebGPU adapter as the browser describes it (GPUAdapterInfo), or why there is none. */
export type AdapterReport = { readonly available: true; readonly name: string; readonly fallback: boolean } | { readonly available: false; readonly reason: string };

export interface SamplingChoice {
  readonly backend: 'webgpu' | 'wasm';
  /** Why WebAssembly, when it is not WebGPU (shown on the page). */
  readonly reason?: string;
}

/** The sessions the sampler opens (personalize/personalized-diffusion.ts): the ones that may run on WebGPU. */
export const SAMPLING_KINDS: ReadonlySet<JobSessionKind> = new Set([SESSION_KINDS.textEncoder, SESSION_KINDS.unet, SESSION_KINDS.vaeDecoder]);

export function parseBackendPreference(value: string | null | undefined): BackendPreference {
  return BACKEND_PREFERENCES.includes(value as BackendPreference) ? (value as BackendPreference) : 'auto';
}

export function chooseSampling(preference: BackendPreference, adapter: AdapterReport): SamplingChoice {
  if (preference === 'wasm') return { backend: 'wasm', reason: 'WebAssembly was asked for' };
  if (!adapter.available) return { backend: 'wasm', reason: adapter.reason };
  if (preference === 'webgpu') return { backend: 'webgpu' };
  if (adapter.fallback) return { backend: 'wasm', reason: `the WebGPU adapter (${adapter.name}) is a software fallback` };
  return { backend: 'webgpu' };
}

/** The parts of GPUAdapterInfo this reads; `isFallbackAdapter` moved from the adapter to its info (Chromium 156 has only the latter). */
export interface AdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: { readonly vendor?: string; readonly architecture?: string; readonly device?: string; readonly description?: string; readonly isFallbackAdapter?: boolean };
}

export function describeAdapter(adapter: AdapterLike | null | undefined): AdapterReport {
  if (!adapter) return { available: false, reason: 'the browser offers no WebGPU adapter' };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter((part) => part).join(' ') || 'unnamed adapter';
  return { available: true, name, fallback: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false };
}
