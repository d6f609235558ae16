import { describe, expect, it } from 'vitest';
import { chooseSampling, describeAdapter, parseBackendPreference, SAMPLING_KINDS } from './backend-choice.ts';

/** What Chromium 156's SwiftShader adapter reports (headless, --enable-unsafe-webgpu): GPUAdapterInfo only. */
const SWIFTSHADER = { info: { vendor: 'google', architecture: 'swiftshader', device: '', description: '', isFallbackAdapter: true } };
const HARDWARE = { info: { vendor: 'nvidia', architecture: 'ampere', device: '', description: '', isFallbackAdapter: false } };

describe('where the device mode samples', () => {
  it('names the adapter and reads the fallback flag from its info, or from the adapter in older browsers', () => {
    expect(describeAdapter(SWIFTSHADER)).toEqual({ available: true, name: 'google swiftshader', fallback: true });
    expect(describeAdapter({ isFallbackAdapter: true, info: { vendor: 'google' } })).toEqual({ available: true, name: 'google', fallback: true });
    expect(describeAdapter(null)).toEqual({ available: false, reason: 'the browser offers no WebGPU adapter' });
  });

  it('auto samples on WebGPU on a hardware adapter only', () => {
    expect(chooseSampling('auto', describeAdapter(HARDWARE))).toEqual({ backend: 'webgpu' });
    expect(chooseSampling('auto', describeAdapter(SWIFTSHADER))).toEqual({ backend: 'wasm', reason: 'the WebGPU adapter (google swiftshader) is a software fallback' });
    expect(chooseSampling('auto', describeAdapter(null))).toEqual({ backend: 'wasm', reason: 'the browser offers no WebGPU adapter' });
  });

  it('webgpu forces WebGPU on any adapter, wasm forces WebAssembly', () => {
    expect(chooseSampling('webgpu', describeAdapter(SWIFTSHADER))).toEqual({ backend: 'webgpu' });
    expect(chooseSampling('webgpu', describeAdapter(null)).backend).toBe('wasm');
    expect(chooseSampling('wasm', describeAdapter(HARDWARE))).toEqual({ backend: 'wasm', reason: 'WebAssembly was asked for' });
  });

  it('reads the page’s override, anything else being auto', () => {
    expect(['webgpu', 'wasm', 'auto', 'cuda', null].map(parseBackendPreference)).toEqual(['webgpu', 'wasm', 'auto', 'auto', 'auto']);
  });

  it('moves only the sampler’s sessions: the trainers stay on WebAssembly', () => {
    expect([...SAMPLING_KINDS].sort()).toEqual(['text-encoder', 'unet', 'vae-decoder']);
  });
});
