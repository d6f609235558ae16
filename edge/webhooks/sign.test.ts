/// <reference types="node" />
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, webhookSecretKey, WEBHOOK_SECRET_PREFIX } from './secret.ts';
import { signWebhook, verifyWebhook } from './sign.ts';

// An independent Standard Webhooks signer, written from the specification with Node's crypto (not WebCrypto).
function referenceSignature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64')}`;
}

const referenceSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

describe('webhook secrets', () => {
  it('are whsec_ followed by 32 bytes of base64 key, different every time', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a.startsWith(WEBHOOK_SECRET_PREFIX)).toBe(true);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it.each([
    ['no prefix', Buffer.alloc(32, 1).toString('base64')],
    ['wrong prefix', `whsk_${Buffer.alloc(32, 1).toString('base64')}`],
    ['not base64', 'whsec_not*base64!'],
    ['too short', `whsec_${Buffer.alloc(16, 1).toString('base64')}`],
    ['too long', `whsec_${Buffer.alloc(65, 1).toString('base64')}`],
    ['empty key', 'whsec_'],
  ])('refuses a malformed secret (%s)', (_, secret) => {
    expect(() => webhookSecretKey(secret)).toThrow(/invalid webhook secret/);
  });
});

describe('signWebhook', () => {
  it('matches the independent implementation on the Standard Webhooks example shape', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
    const body = '{"test": 2432232314}';
    const headers = await signWebhook({ id, timestampSeconds: 1614265330, body, secrets: [secret] });
    expect(headers).toEqual({
      'webhook-id': id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': referenceSignature(secret, id, 1614265330, body),
    });
  });

  it('matches the independent implementation for any id, timestamp, UTF-8 body and secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes(' ')),
        fc.integer({ min: 0, max: 4_102_444_800 }),
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        async (id, timestamp, body, keyBytes) => {
          const secret = `whsec_${Buffer.from(keyBytes).toString('base64')}`;
          const headers = await signWebhook({ id, timestampSeconds: timestamp, body, secrets: [secret] });
          expect(headers['webhook-signature']).toBe(referenceSignature(secret, id, timestamp, body));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('during a rotation carries one signature per secret, newest first, space-separated', async () => {
    const newer = referenceSecret();
    const older = referenceSecret();
    const headers = await signWebhook({ id: 'msg_1', timestampSeconds: 1_800_000_000, body: '{}', secrets: [newer, older] });
    expect(headers['webhook-signature'].split(' ')).toEqual([
      referenceSignature(newer, 'msg_1', 1_800_000_000, '{}'),
      referenceSignature(older, 'msg_1', 1_800_000_000, '{}'),
    ]);
  });

  it('refuses to sign without a secret or with a non-integer timestamp', async () => {
    await expect(signWebhook({ id: 'msg_1', timestampSeconds: 1, body: '{}', secrets: [] })).rejects.toThrow(/at least one secret/);
    await expect(signWebhook({ id: 'msg_1', timestampSeconds: 1.5, body: '{}', secrets: [referenceSecret()] })).rejects.toThrow(
      /integer/,
    );
  });
});

describe('verifyWebhook', () => {
  const now = 1_800_000_000;
  const headersOf = (record: Record<string, string>) => new Headers(record);

  it('accepts a signature made by the independent implementation, with either secret of a rotation', async () => {
    const [oldSecret, newSecret] = [referenceSecret(), referenceSecret()];
    const signature = `${referenceSignature(newSecret, 'msg_x', now, 'hello')} ${referenceSignature(oldSecret, 'msg_x', now, 'hello')}`;
    const headers = headersOf({ 'webhook-id': 'msg_x', 'webhook-timestamp': String(now), 'webhook-signature': signature });
    for (const secret of [oldSecret, newSecret]) {
      expect(await verifyWebhook({ headers, body: 'hello', secret, nowSeconds: now })).toEqual({ ok: true });
    }
    expect(await verifyWebhook({ headers, body: 'hello', secret: referenceSecret(), nowSeconds: now })).toEqual({
      ok: false,
      reason: 'no matching signature',
    });
  });

  it('rejects a tampered body, a stale timestamp and missing headers', async () => {
    const secret = referenceSecret();
    const signed = { 'webhook-id': 'msg_y', 'webhook-timestamp': String(now), 'webhook-signature': referenceSignature(secret, 'msg_y', now, 'a') };
    expect((await verifyWebhook({ headers: headersOf(signed), body: 'b', secret, nowSeconds: now })).ok).toBe(false);
    expect(await verifyWebhook({ headers: headersOf(signed), body: 'a', secret, nowSeconds: now + 301 })).toEqual({
      ok: false,
      reason: 'timestamp outside tolerance',
    });
    expect(await verifyWebhook({ headers: headersOf({ 'webhook-id': 'msg_y' }), body: 'a', secret, nowSeconds: now })).toEqual({
      ok: false,
      reason: 'missing webhook headers',
    });
  });
});
