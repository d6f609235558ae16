// The web client: plain modules, no framework. It speaks the public API only, with the key the user pastes.
const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'hdb.apiKey';
const POLL_MS = 700;
const state = { key: localStorage.getItem(KEY_STORAGE) ?? '', weightsId: null };

async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${state.key}`);
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
  state.key = $('api-key').value.trim();
  try {
    await api('/v1/subjects?limit=1');
    localStorage.setItem(KEY_STORAGE, state.key);
    say($('key-status'), 'Key accepted.');
  } catch (error) {
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
  if (!format || !state.weightsId) return;
  const response = await api(`/v1/weights/${state.weightsId}/download?format=${format}&dtype=fp16`);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = `${state.weightsId}-${format}.safetensors`;
  link.click();
});

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
