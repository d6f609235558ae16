// "On this device": the page's side of the device worker (gpu-runner/browser/device-worker.ts, built into
// /build/device-worker.js by scripts/build-device.ts). The photo is decoded here and handed to the worker; nothing of
// it is sent anywhere.

const MANIFEST_URL = '/build/pack.json';
const WORKER_URL = '/build/device-worker.js';
/** Where sampling runs (gpu-runner/browser/backend-choice.ts): `?backend=webgpu` or `wasm` on the page's URL overrides `auto`. */
const BACKENDS = ['auto', 'webgpu', 'wasm'];

/** The backend the page's URL asks for, else `auto` (WebGPU on a hardware adapter, WebAssembly otherwise). */
export function backendPreference() {
  const asked = new URLSearchParams(location.search).get('backend');
  return BACKENDS.includes(asked) ? asked : 'auto';
}

// A module declaring one v128 function: WebAssembly.validate accepts it only where SIMD is supported.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** What this browser lacks for the device mode (empty when it has everything). */
export function missingFeatures() {
  const missing = [];
  if (typeof WebAssembly !== 'object') missing.push('WebAssembly');
  else if (!WebAssembly.validate(SIMD_PROBE)) missing.push('WebAssembly SIMD');
  if (typeof Worker !== 'function') missing.push('Web Workers');
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') missing.push('image decoding in scripts (createImageBitmap, OffscreenCanvas)');
  return missing;
}

/** The examples the served pack understands (also used by the server path: same pack). */
export async function packExamples() {
  const response = await fetch(MANIFEST_URL);
  if (!response.ok) return null;
  const manifest = await response.json();
  return { examples: manifest.examples, identifier: manifest.identifier, id: manifest.id };
}

/** A photo file → upright 8-bit RGB pixels. */
export async function decodePhoto(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const data = new Uint8Array(bitmap.width * bitmap.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i];
    data[j + 1] = rgba[i + 1];
    data[j + 2] = rgba[i + 2];
  }
  return { width: bitmap.width, height: bitmap.height, data };
}

/** RGB pixels → a PNG blob, enlarged by whole pixels to `size` (the pack draws 32 px). */
export async function rgbToPng(image, size) {
  const small = new OffscreenCanvas(image.width, image.height);
  const pixels = new ImageData(image.width, image.height);
  for (let i = 0, j = 0; j < image.data.length; i += 4, j += 3) {
    pixels.data[i] = image.data[j];
    pixels.data[i + 1] = image.data[j + 1];
    pixels.data[i + 2] = image.data[j + 2];
    pixels.data[i + 3] = 255;
  }
  small.getContext('2d').putImageData(pixels, 0, 0);
  const big = new OffscreenCanvas(size, size);
  const context = big.getContext('2d');
  context.imageSmoothingEnabled = false;
  context.drawImage(small, 0, 0, size, size);
  return big.convertToBlob({ type: 'image/png' });
}

/** The worker, spoken to by request: `request(type, fields, onUpdate)` resolves with the final reply. */
export class DeviceRuntime {
  constructor() {
    this.worker = new Worker(WORKER_URL, { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = ({ data }) => {
      const entry = this.pending.get(data.id);
      if (!entry) return;
      if (data.type === 'load-progress' || data.type === 'progress') return void entry.onUpdate?.(data);
      this.pending.delete(data.id);
      if (data.type === 'failed') entry.reject(Object.assign(new Error(data.message), { canceled: data.canceled }));
      else entry.resolve(data);
    };
    this.worker.onerror = (event) => {
      for (const entry of this.pending.values()) entry.reject(new Error(event.message || 'the device worker failed'));
      this.pending.clear();
    };
  }

  request(type, fields = {}, onUpdate) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onUpdate });
      this.worker.postMessage({ id, type, ...fields });
    });
  }

  load(onUpdate, backend = backendPreference()) {
    return this.request('load', { manifestUrl: new URL(MANIFEST_URL, location.href).href, backend }, onUpdate);
  }

  /**
   * Personalizes; `cancel()` on the returned handle stops it before the next step. The flag is shared memory (the
   * worker is busy between steps and reads no messages); without cross-origin isolation the worker is restarted.
   */
  personalize(fields, onUpdate) {
    const flag = typeof SharedArrayBuffer === 'function' && crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    const done = this.request('personalize', { ...fields, ...(flag ? { cancel: flag } : {}) }, onUpdate);
    const cancel = () => {
      if (flag) return void Atomics.store(flag, 0, 1);
      this.worker.terminate();
      for (const entry of this.pending.values()) entry.reject(Object.assign(new Error('personalization canceled'), { canceled: true, restarted: true }));
      this.pending.clear();
    };
    return { done, cancel };
  }
}
