import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';

/** What a caller asks for: `auto` tries CUDA and falls back to CPU. */
export type ExecutionProviderPreference = 'auto' | 'cuda' | 'cpu';
/** What a session actually runs on. */
export type ExecutionProvider = 'cuda' | 'cpu';

/**
 * Whether CUDA worked in this process: unknown until the first `auto` session tries it. onnxruntime-node throws at
 * session creation when the CUDA provider library is absent (the npm install skips it; the runner image adds it).
 */
let cudaAvailability: { available: boolean; reason?: string } | undefined;

export function knownCudaAvailability(): { available: boolean; reason?: string } | undefined {
  return cudaAvailability;
}

export function recordCudaAvailability(available: boolean, reason?: string): void {
  cudaAvailability = reason === undefined ? { available } : { available, reason };
}

let fallbackReported = false;

/** The reason `auto` fell back to CPU, returned once per process so the fallback is logged once, not per session. */
export function takeCpuFallbackNotice(): string | undefined {
  if (fallbackReported || cudaAvailability?.available !== false) return undefined;
  fallbackReported = true;
  return cudaAvailability.reason ?? 'CUDA is not available';
}

const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';

/**
 * Where onnxruntime-node loads provider libraries from (next to its native binding). Checking for the CUDA library
 * first avoids a failed load, which onnxruntime reports as an error line on stderr even when we fall back.
 */
function cudaLibraryPath(): string {
  const packageDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return join(packageDir, 'bin', 'napi-v6', platform(), arch(), CUDA_PROVIDER_LIBRARY);
}

/** Whether onnxruntime-node's CUDA provider library is installed here (the runner image adds it; npm install skips it). */
export function cudaProviderInstalled(): boolean {
  return existsSync(cudaLibraryPath());
}

/** The providers to try, in order, for a preference given what is known about CUDA so far. */
export function providerCandidates(preference: ExecutionProviderPreference): ExecutionProvider[] {
  if (preference === 'auto' && cudaAvailability === undefined && !cudaProviderInstalled()) {
    recordCudaAvailability(false, `${CUDA_PROVIDER_LIBRARY} is not installed`);
  }
  switch (preference) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return ['cuda'];
    case 'auto':
      return cudaAvailability?.available === false ? ['cpu'] : ['cuda', 'cpu'];
  }
}
