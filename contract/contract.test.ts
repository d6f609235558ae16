// Runs in Node (the runner's runtime); the edge tests exercise the same module inside workerd.
import { describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_FINETUNE_STEPS,
  FinetuneOptions,
  JobRequest,
  RunnerEvent,
  ReplayGuard,
  SIGNATURE_HEADERS,
  base64ToBytes,
  bytesToBase64,
  sha256Hex,
  signMessage,
  verifyMessage,
  verifyRequest,
} from './index.ts';

const SECRET = 'test-secret-0123456789abcdef0123456789';
const OTHER_SECRET = 'other-secret-0123456789abcdef012345678';
const message = { method: 'POST', path: '/v1/jobs', body: '{"job_id":"job_1"}' };

function headersOf(record: Record<string, string>) {
  return new Headers(record);
}

describe('signing', () => {
  it('verifies what it signs, and accepts any of several secrets (rotation)', async () => {
    const signed = await signMessage(SECRET, message);
    expect(await verifyMessage([SECRET], headersOf(signed), message)).toMatchObject({ ok: true });
    expect(await verifyMessage([OTHER_SECRET, SECRET], headersOf(signed), message)).toMatchObject({ ok: true });
  });

  it('rejects a changed body, path, method or secret', async () => {
    const signed = headersOf(await signMessage(SECRET, message));
    const mismatch = { ok: false, reason: 'signature_mismatch' };
    expect(await verifyMessage([SECRET], signed, { ...message, body: '{"job_id":"job_2"}' })).toEqual(mismatch);
    expect(await verifyMessage([SECRET], signed, { ...message, path: '/v1/jobs/other' })).toEqual(mismatch);
    expect(await verifyMessage([SECRET], signed, { ...message, method: 'DELETE' })).toEqual(mismatch);
    expect(await verifyMessage([OTHER_SECRET], signed, message)).toEqual(mismatch);
  });

  it('rejects stale and future timestamps (replay window)', async () => {
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    const stale = headersOf(await signMessage(SECRET, message, { now: tenMinutesAgo }));
    expect(await verifyMessage([SECRET], stale, message)).toEqual({ ok: false, reason: 'timestamp_out_of_window' });
    const future = headersOf(await signMessage(SECRET, message, { now: new Date(Date.now() + 600_000) }));
    expect(await verifyMessage([SECRET], future, message)).toEqual({ ok: false, reason: 'timestamp_out_of_window' });
  });

  it('rejects missing headers and malformed signatures', async () => {
    const signed = await signMessage(SECRET, message);
    const withoutSignature = { ...signed, [SIGNATURE_HEADERS.signature]: '' };
    expect(await verifyMessage([SECRET], headersOf(withoutSignature), message)).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    const garbled = { ...signed, [SIGNATURE_HEADERS.signature]: 'v2,abc' };
    expect(await verifyMessage([SECRET], headersOf(garbled), message)).toEqual({
      ok: false,
      reason: 'bad_signature_format',
    });
    const badTimestamp = { ...signed, [SIGNATURE_HEADERS.timestamp]: 'soon' };
    expect(await verifyMessage([SECRET], headersOf(badTimestamp), message)).toEqual({
      ok: false,
      reason: 'bad_timestamp',
    });
  });

  it('verifies a Fetch API Request end to end', async () => {
    const signed = await signMessage(SECRET, message);
    const request = new Request('http://runner.local/v1/jobs?ignored=1', {
      method: 'POST',
      headers: signed,
      body: message.body,
    });
    const { result, body } = await verifyRequest([SECRET], request);
    expect(result.ok).toBe(true);
    expect(body).toBe(message.body);
  });

  it('imports each secret\'s key once, for signing and verifying alike, however many messages it signs', async () => {
    const first = `cache-secret-a-${crypto.randomUUID()}`;
    const second = `cache-secret-b-${crypto.randomUUID()}`;
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    try {
      for (let i = 0; i < 3; i++) {
        const signed = headersOf(await signMessage(first, { ...message, body: `{"n":${i}}` }));
        expect(await verifyMessage([second, first], signed, { ...message, body: `{"n":${i}}` })).toMatchObject({ ok: true });
      }
      expect(importKey).toHaveBeenCalledTimes(2);
      const mismatch = await verifyMessage([second], headersOf(await signMessage(first, message)), message);
      expect(mismatch).toEqual({ ok: false, reason: 'signature_mismatch' });
      expect(importKey).toHaveBeenCalledTimes(2);
    } finally {
      importKey.mockRestore();
    }
  });

  it('refuses short secrets', async () => {
    await expect(signMessage('short', message)).rejects.toThrow(/at least 32/);
  });

  it('ReplayGuard accepts an id once inside the window', () => {
    const guard = new ReplayGuard(300);
    expect(guard.accept('msg_1', 0)).toBe(true);
    expect(guard.accept('msg_1', 1000)).toBe(false);
    expect(guard.accept('msg_1', 700_000)).toBe(true);
  });
});

describe('schemas', () => {
  const image = { data_base64: bytesToBase64(new Uint8Array([1, 2, 3])), sha256: 'a'.repeat(64), byte_size: 3 };

  it('parses a personalization job with defaults filled in', () => {
    const job = JobRequest.parse({
      job_id: 'job_1',
      kind: 'personalization',
      attempt: 1,
      events_url: 'https://edge.example/internal/runner/events',
      lease_seconds: 600,
      payload: {
        method: 'hyperdreambooth',
        images: [{ content_type: 'image/png', width: 512, height: 512, source: image }],
        finetune: {},
        outputs: [{ format: 'lidb', dtype: 'fp16' }],
      },
    });
    expect(job.kind === 'personalization' && job.payload.finetune).toEqual({
      steps: DEFAULT_FINETUNE_STEPS,
      rank: 4,
      relax: 'lora',
      seed: 0,
      identifier_token: '[V]',
    });
  });

  it('takes a prior-preservation weight in [0, 10] and refuses others', () => {
    expect(FinetuneOptions.parse({ prior_preservation_weight: 1 }).prior_preservation_weight).toBe(1);
    expect(FinetuneOptions.safeParse({ prior_preservation_weight: -0.5 }).success).toBe(false);
    expect(FinetuneOptions.safeParse({ prior_preservation_weight: 11 }).success).toBe(false);
  });

  it('rejects unknown fields and bad kinds', () => {
    const bad = JobRequest.safeParse({ job_id: 'j', kind: 'training', attempt: 1, events_url: 'x', lease_seconds: 1 });
    expect(bad.success).toBe(false);
  });

  it('refuses a progress event whose step exceeds total_steps', () => {
    const event = {
      event_id: 'evt_1',
      job_id: 'job_1',
      attempt: 1,
      occurred_at: new Date().toISOString(),
      type: 'progress',
      step: 41,
      total_steps: 40,
    };
    expect(RunnerEvent.safeParse(event).success).toBe(false);
    expect(RunnerEvent.safeParse({ ...event, step: 40 }).success).toBe(true);
  });

  it('refuses a PEFT output for textual inversion, which has no LoRA, and names the formats it writes', () => {
    const job = (method: string, format: string) => ({
      job_id: 'job_ti',
      kind: 'personalization',
      attempt: 1,
      events_url: 'https://edge.example/internal/runner/events',
      lease_seconds: 600,
      payload: { method, images: [{ content_type: 'image/png', width: 512, height: 512, source: image }], finetune: {}, outputs: [{ format: 'lidb', dtype: 'fp16' }, { format, dtype: 'fp16' }] },
    });
    expect(JobRequest.safeParse(job('textual-inversion', 'kohya')).success).toBe(true);
    expect(JobRequest.safeParse(job('dreambooth-lora', 'peft')).success).toBe(true);
    const refused = JobRequest.safeParse(job('textual-inversion', 'peft'));
    expect(refused.success).toBe(false);
    expect(refused.error?.issues).toEqual([
      expect.objectContaining({ path: ['payload', 'outputs', 1, 'format'], message: 'method textual-inversion has no peft file; it writes lidb, kohya' }),
    ]);
  });

  it('accepts rank 0 in a personalization result only for textual inversion', () => {
    const file = { format: 'lidb', dtype: 'fp16', data_base64: 'AAAA', sha256: 'b'.repeat(64), byte_size: 3 };
    const succeeded = (method: string, rank: number) => ({
      event_id: 'evt_r',
      job_id: 'job_1',
      attempt: 1,
      occurred_at: new Date().toISOString(),
      type: 'succeeded',
      result: { kind: 'personalization', method, base_model_id: 'sd15', rank, layers: ['text_encoder.text_model.embeddings.token_embedding'], num_parameters: 2304, files: [file] },
    });
    expect(RunnerEvent.safeParse(succeeded('textual-inversion', 0)).success).toBe(true);
    expect(RunnerEvent.safeParse(succeeded('hyperdreambooth', 0)).success).toBe(false);
    expect(RunnerEvent.safeParse(succeeded('hyperdreambooth', 1)).success).toBe(true);
  });

  it('round-trips base64 and hashes like sha256sum', async () => {
    const bytes = new Uint8Array(100_000).map((_, i) => i % 251);
    expect(base64ToBytes(bytesToBase64(bytes))).toEqual(bytes);
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
