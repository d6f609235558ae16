// The web client: plain modules, no framework. On the server it speaks the public API only, with the key the user
// pastes; on this device it runs the runner's library in a worker (device.js) and sends nothing.
import { DeviceRuntime, decodePhoto, missingFeatures, packExamples, rgbToPng } from './device.js';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'hdb.apiKey';
const POLL_MS = 700;
/** Seeds of device runs: fixed, so the same photo and settings give the same weights (the runner's default is 0). */
const DEVICE_FINETUNE_SEED = 0;
const state = { key: localStorage.getItem(KEY_STORAGE) ?? '', weightsId: null, mode: 'server', device: null, deviceReady: null, deviceWeights: false, run: null };

async function api(path, init = {}, key = state.key) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body?.error?.message) message = body.error.message;
    } catch {}
    throw new Error(message);
  }
  return response;
}

function say(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle('error', isError);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const idempotencyKey = () => crypto.randomUUID();

$('api-key').value = state.key;
$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  try {
    await api('/v1/subjects?limit=1', {}, key);
    state.key = key;
    localStorage.setItem(KEY_STORAGE, key);
    say($('key-status'), 'Key accepted.');
  } catch (error) {
    // A refused key is not the page's key: nothing is sent with it, and the device mode offers no saving to an account.
    state.key = '';
    say($('key-status'), `Key refused: ${error.message}`, true);
  }
});

$('photo').addEventListener('change', () => {
  const file = $('photo').files[0];
  const preview = $('photo-preview');
  if (!file) return void (preview.hidden = true);
  preview.src = URL.createObjectURL(file);
  preview.alt = 'The photo to personalize from';
  preview.hidden = false;
});

async function waitForPersonalization(id) {
  for (;;) {
    const job = await (await api(`/v1/personalizations/${id}`)).json();
    const { step, total_steps: total } = job.progress;
    say($('job-status'), job.status, job.status === 'failed');
    if (total) {
      $('job-progress').max = total;
      $('job-progress').value = step;
      $('job-steps').textContent = `step ${step} / ${total}`;
    }
    if (job.status === 'succeeded') return job;
    if (job.status === 'failed' || job.status === 'canceled') {
      throw new Error(job.error?.message ?? `personalization ${job.status}`);
    }
    await sleep(POLL_MS);
  }
}

$('upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (state.mode === 'device') return personalizeOnDevice();
  const form = new FormData();
  form.append('images', $('photo').files[0]);
  $('job').hidden = false;
  $('downloads').hidden = true;
  $('generate-button').disabled = true;
  try {
    say($('job-status'), 'uploading…');
    const subject = await (await api('/v1/subjects', { method: 'POST', body: form, headers: { 'idempotency-key': idempotencyKey() } })).json();
    const created = await (
      await api('/v1/personalizations', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey() },
        body: JSON.stringify({ subject_id: subject.id, method: $('method').value, finetune: { steps: Number($('steps').value) } }),
      })
    ).json();
    $('job-id').textContent = created.id;
    const done = await waitForPersonalization(created.id);
    state.weightsId = done.weights_id;
    $('downloads').hidden = false;
    $('generate-button').disabled = false;
  } catch (error) {
    say($('job-status'), error.message, true);
  }
});

$('downloads').addEventListener('click', async (event) => {
  const format = event.target?.dataset?.format;
  if (format && state.mode === 'device' && state.deviceWeights) {
    const file = await state.device.request('weights', { format, dtype: 'fp16' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([file.bytes]));
    link.download = file.name;
    return void link.click();
  }
  if (!format || !state.weightsId) return;
  const response = await api(`/v1/weights/${state.weightsId}/download?format=${format}&dtype=fp16`);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = `${state.weightsId}-${format}.safetensors`;
  link.click();
});

function showExamples(examples) {
  $('examples').replaceChildren(
    ...examples.map((text) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = text;
      return button;
    }),
  );
}

// The examples come from the served pack (what its world was trained to draw), in both modes.
packExamples()
  .then((pack) => {
    if (!pack) return showExamples(['a photo of a [V] face']);
    showExamples(pack.examples);
    $('identifier').textContent = `${pack.identifier} face`;
  })
  .catch(() => showExamples(['a photo of a [V] face']));

$('examples').addEventListener('click', (event) => {
  if (event.target instanceof HTMLButtonElement) $('prompt').value = event.target.textContent;
});

async function showImages(generation) {
  for (const image of generation.images) {
    // The API answers absolute URLs on its public origin; the page may be open on another name of the same server
    // (localhost vs 127.0.0.1), so fetch the path on the page's own origin.
    const { pathname, search } = new URL(image.url, location.href);
    const blob = await (await api(pathname + search)).blob();
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    img.src = URL.createObjectURL(blob);
    img.alt = `${generation.params.prompt} (seed ${image.seed})`;
    const caption = document.createElement('figcaption');
    caption.textContent = `${generation.params.prompt} · seed ${image.seed}`;
    figure.append(img, caption);
    $('gallery').prepend(figure);
  }
}

$('generate-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (state.mode === 'device') return generateOnDevice();
  if (!state.weightsId) return;
  $('generate-button').disabled = true;
  try {
    say($('generate-status'), 'generating…');
    const body = {
      weights_id: state.weightsId,
      prompt: $('prompt').value,
      num_images: Number($('num-images').value),
      width: Number($('size').value),
      height: Number($('size').value),
      seed: Math.floor(Math.random() * 1e6),
    };
    let generation = await (
      await api('/v1/generations', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey() },
        body: JSON.stringify(body),
      })
    ).json();
    while (!['succeeded', 'failed', 'canceled'].includes(generation.status)) {
      await sleep(POLL_MS);
      generation = await (await api(`/v1/generations/${generation.id}`)).json();
    }
    if (generation.status !== 'succeeded') throw new Error(generation.error?.message ?? `generation ${generation.status}`);
    await showImages(generation);
    say($('generate-status'), `${generation.images.length} image(s) ready.`);
  } catch (error) {
    say($('generate-status'), error.message, true);
  } finally {
    $('generate-button').disabled = false;
  }
});

// ---- On this device --------------------------------------------------------------------------------------------

/** The sampler's session kinds (gpu-runner/browser/backend-choice.ts): what may run on WebGPU. */
const SAMPLING_KINDS = ['text-encoder', 'unet', 'vae-decoder'];

function describeWasm(backend) {
  const threads = backend.threads > 1 ? `${backend.threads} threads` : backend.crossOriginIsolated ? '1 thread' : '1 thread (the page is not cross-origin isolated)';
  return `WebAssembly${backend.simd ? ' SIMD' : ''}, ${threads}`;
}

/**
 * Where sampling and training run. `placements` (after a generation) says where the sampler's sessions actually
 * opened: one that could not be created on WebGPU runs on WebAssembly, and the reason is shown.
 */
function describeBackend(backend, placements = {}) {
  const failed = SAMPLING_KINDS.map((kind) => [kind, placements[kind]]).filter(([, placed]) => placed?.fallback);
  let sampling;
  if (failed.length > 0) sampling = `WebAssembly (WebGPU failed for ${failed.map(([kind, placed]) => `${kind}: ${placed.fallback}`).join('; ')})`;
  else if (backend.sampling.backend === 'webgpu') sampling = `WebGPU (${backend.adapter.name})`;
  else sampling = `WebAssembly (${backend.sampling.reason})`;
  return `Sampling: ${sampling} · Training: ${describeWasm(backend)}`;
}

function showReady(loaded, placements) {
  say($('device-status'), `Ready on this device: ${loaded.packId}, ${(loaded.bytes / 1e6).toFixed(1)} MB. ${describeBackend(loaded.backend, placements)}.`);
}

/** Starts the worker and loads the pack once (the browser keeps the files: the second load comes from its cache). */
function deviceReady() {
  if (state.deviceReady) return state.deviceReady;
  state.device = new DeviceRuntime();
  const bar = $('device-load');
  bar.hidden = false;
  say($('device-status'), 'downloading the model…');
  state.deviceReady = state.device
    .load(({ loaded, total }) => {
      bar.max = total;
      bar.value = loaded;
    })
    .then((loaded) => {
      bar.hidden = true;
      showReady(loaded);
      return loaded;
    })
    .catch((error) => {
      state.deviceReady = null;
      say($('device-status'), `The model could not be loaded: ${error.message}`, true);
      throw error;
    });
  return state.deviceReady;
}

function setMode(mode) {
  state.mode = mode;
  $('key-section').hidden = mode === 'device';
  $('method').disabled = mode === 'device';
  $('generate-button').disabled = mode === 'device' ? !state.deviceWeights : !state.weightsId;
  if (mode === 'server') return say($('device-status'), '');
  const missing = missingFeatures();
  if (missing.length > 0) {
    say($('device-status'), `This browser cannot personalize on the device: it lacks ${missing.join(', ')}. Use the server instead.`, true);
    return void ($('upload-form').querySelector('button[type=submit]').disabled = true);
  }
  $('method').value = 'hyperdreambooth';
  deviceReady().catch(() => {});
}

$('mode').addEventListener('change', (event) => {
  $('upload-form').querySelector('button[type=submit]').disabled = false;
  setMode(event.target.value);
});

function showSteps(step, total) {
  $('job-progress').max = total;
  $('job-progress').value = step;
  $('job-steps').textContent = `step ${step} / ${total}`;
}

async function personalizeOnDevice() {
  const file = $('photo').files[0];
  if (!file) return;
  $('job').hidden = false;
  $('downloads').hidden = true;
  $('generate-button').disabled = true;
  $('job-id').textContent = 'on this device';
  $('save-weights').hidden = true;
  say($('save-status'), '');
  const steps = Number($('steps').value);
  try {
    await deviceReady();
    const image = await decodePhoto(file);
    say($('job-status'), 'predicting…');
    showSteps(0, steps);
    const run = state.device.personalize({ image, steps, seed: DEVICE_FINETUNE_SEED }, (update) => {
      if (update.stage === 'finetune') {
        say($('job-status'), 'finetuning');
        showSteps(update.step, update.steps);
      }
    });
    state.run = run;
    $('cancel').hidden = false;
    const done = await run.done;
    state.deviceWeights = true;
    // One Idempotency-Key per set of weights: a double click or a retry after a lost answer saves them once.
    state.saveKey = idempotencyKey();
    $('save-weights-button').disabled = false;
    say($('job-status'), `succeeded (prediction ${(done.predictMs / 1000).toFixed(2)} s, finetune ${(done.finetuneMs / 1000).toFixed(2)} s)`);
    $('downloads').hidden = false;
    // Saving needs an account: only offered once a key was entered (in the server mode's step 1).
    $('save-weights').hidden = !state.key;
    $('generate-button').disabled = false;
  } catch (error) {
    if (error.restarted) state.deviceReady = null;
    say($('job-status'), error.canceled ? 'canceled' : error.message, !error.canceled);
  } finally {
    state.run = null;
    $('cancel').hidden = true;
  }
}

$('cancel').addEventListener('click', () => state.run?.cancel());

// Uploads the native weight file only, never the photo (POST /v1/weights, docs/api.md "Importing weights"); the
// server checks it against its base model and then generates from it like from its own weights.
$('save-weights-button').addEventListener('click', async () => {
  if (!state.key || !state.deviceWeights) return;
  const button = $('save-weights-button');
  button.disabled = true;
  say($('save-status'), 'saving…');
  try {
    const file = await state.device.request('weights', { format: 'lidb', dtype: 'fp16' });
    const form = new FormData();
    form.append('file', new Blob([file.bytes], { type: 'application/octet-stream' }), file.name);
    const saved = await (await api('/v1/weights', { method: 'POST', body: form, headers: { 'idempotency-key': state.saveKey } })).json();
    say($('save-status'), `Saved to your account as ${saved.id}.`);
    // The saved weights are the account's now: "On the server" generates from them too.
    state.weightsId = saved.id;
  } catch (error) {
    say($('save-status'), `Not saved: ${error.message}`, true);
    button.disabled = false;
  }
});

async function generateOnDevice() {
  $('generate-button').disabled = true;
  try {
    say($('generate-status'), 'generating on this device…');
    const size = Number($('size').value);
    const prompt = $('prompt').value;
    const result = await state.device.request('generate', {
      prompt,
      numImages: Number($('num-images').value),
      seed: Math.floor(Math.random() * 1e6),
      steps: 25,
      guidanceScale: 7.5,
      size,
    });
    showReady(await deviceReady(), result.placements);
    for (const image of result.images) {
      const figure = document.createElement('figure');
      const img = document.createElement('img');
      img.src = URL.createObjectURL(await rgbToPng(image, size));
      img.alt = `${prompt} (seed ${image.seed})`;
      const caption = document.createElement('figcaption');
      caption.textContent = `${prompt} · seed ${image.seed} · on this device`;
      figure.append(img, caption);
      $('gallery').prepend(figure);
    }
    say($('generate-status'), `${result.images.length} image(s) ready.`);
  } catch (error) {
    say($('generate-status'), error.message, true);
  } finally {
    $('generate-button').disabled = false;
  }
}
