// Messages between the web client's page (edge/client/device.js) and the device worker (device-worker.ts). Every
// request carries an id; its replies carry the same id.
import type { AdapterReport, BackendPreference, SamplingChoice } from './backend-choice.ts';
import type { BrowserKindPlacement } from '../onnx/runtime/browser/session-host.ts';

/** The served pack: written by the build (scripts/build-device.ts) beside the bundle as `device/pack.json`. */
export interface PackManifest {
  readonly id: string;
  readonly sha256: string;
  /** URL folder holding the pack's files (immutable: the digest is in the name). */
  readonly base: string;
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
  /** Prompts the pack understands, from the world it was trained on (its benchmark's contexts). */
  readonly examples: readonly string[];
  /** URL folder holding onnxruntime-web's WebAssembly files (versioned, immutable). */
  readonly ortBase: string;
  /** onnxruntime-web's WebGPU build in the same folder, loaded only when sampling runs on WebGPU (webgpu-runtime.ts). */
  readonly ortWebGpu: OrtWebGpuFiles;
  /** The identifier the finetune binds the face to, as the server's default (contract: identifier_token). */
  readonly identifier: string;
}

/** Names relative to `ortBase`. */
export interface OrtWebGpuFiles {
  /** The WebGPU build's API module (its loader .mjs sits beside it under onnxruntime-web's own name). */
  readonly api: string;
  /** Its WebAssembly, in order: in parts, each under Workers Static Assets' per-file limit. */
  readonly wasmParts: readonly string[];
}

export interface RgbPixels {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** Where the device mode runs: the trainers on WebAssembly always, the sampler as chosen (backend-choice.ts). */
export interface Backend {
  /** The trainers' backend (and the sampler's unless `sampling` says WebGPU). */
  readonly name: 'wasm';
  readonly threads: number;
  readonly simd: boolean;
  readonly crossOriginIsolated: boolean;
  /** Whether the browser offers WebGPU (navigator.gpu with an adapter). */
  readonly webgpu: boolean;
  readonly preference: BackendPreference;
  readonly adapter: AdapterReport;
  /** What sampling runs on; `reason` says why WebAssembly (asked for, no adapter, a fallback adapter, WebGPU failed to start). */
  readonly sampling: SamplingChoice;
}

/** Where each kind of session opened so far runs (text-encoder, unet, vae-decoder, hypernetwork, vae-encoder, trainer). */
export type Placements = Readonly<Record<string, BrowserKindPlacement>>;

export type DeviceRequest =
  | { readonly id: number; readonly type: 'load'; readonly manifestUrl: string; readonly backend?: BackendPreference }
  | {
      readonly id: number;
      readonly type: 'personalize';
      readonly image: RgbPixels;
      readonly steps: number;
      readonly seed: number;
      readonly learningRate?: number;
      /** Int32Array over a SharedArrayBuffer: 1 = cancel (checked before each step). Absent without isolation. */
      readonly cancel?: Int32Array;
    }
  | {
      readonly id: number;
      readonly type: 'generate';
      readonly prompt: string;
      readonly negativePrompt?: string;
      readonly numImages: number;
      readonly seed: number;
      readonly steps: number;
      readonly guidanceScale: number;
      readonly size: number;
    }
  | { readonly id: number; readonly type: 'weights'; readonly format: 'lidb' | 'kohya'; readonly dtype: 'fp16' | 'fp32' }
  /** The trained factors as float32 arrays (tests compare them with the runner's). */
  | { readonly id: number; readonly type: 'factors' };

export type DeviceReply =
  | { readonly id: number; readonly type: 'load-progress'; readonly loaded: number; readonly total: number }
  | { readonly id: number; readonly type: 'loaded'; readonly packId: string; readonly sha256: string; readonly backend: Backend; readonly bytes: number; readonly transferred: number; readonly ms: number }
  | { readonly id: number; readonly type: 'progress'; readonly stage: 'predict' | 'finetune'; readonly step: number; readonly steps: number; readonly loss?: number }
  | {
      readonly id: number;
      readonly type: 'personalized';
      readonly predictMs: number;
      /** From the end of the prediction to the last step. */
      readonly finetuneMs: number;
      /** To the first step's end: encoding the face, opening the trainer (once per page), the step. */
      readonly firstStepMs: number;
      /** Each later step. */
      readonly stepMs: readonly number[];
      readonly losses: readonly number[];
      readonly placements: Placements;
    }
  | { readonly id: number; readonly type: 'generated'; readonly images: readonly (RgbPixels & { readonly seed: number })[]; readonly ms: number; readonly placements: Placements }
  | { readonly id: number; readonly type: 'weights'; readonly bytes: Uint8Array; readonly name: string }
  | { readonly id: number; readonly type: 'factors'; readonly factors: Record<string, Float32Array> }
  | { readonly id: number; readonly type: 'failed'; readonly message: string; readonly canceled: boolean };
