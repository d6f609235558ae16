// Large inputs reach the runner as short-lived signed URLs on the edge instead of inline bytes.
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../contract/index.ts';
import { signedInputUrl } from '../../edge/jobs/input-urls.ts';
import { INLINE_INPUT_LIMIT_BYTES } from '../../edge/jobs/runner-request.ts';
import { call, createTenant, expectError, testEnv } from './helpers.ts';
import { file, form, png } from './images.ts';
import { waitForRunnerJob } from './runner-double.ts';

function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

describe('runner inputs', () => {
  it('sends big subjects as signed URLs that serve the stored bytes, and refuses tampered or expired ones', async () => {
    const tenant = await createTenant('inputs');
    const big = png(512, 512, INLINE_INPUT_LIMIT_BYTES / 2);
    const subject = await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(big, 'a.png'), file(big, 'b.png'), file(png(64, 64), 'c.png')]) });
    const subjectId = ((await subject.json()) as { id: string }).id;
    const created = await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subjectId } });
    const { id } = (await created.json()) as { id: string };
    const job = await waitForRunnerJob(id);
    if (job.request.kind !== 'personalization') throw new Error('expected a personalization');
    const sources = job.request.payload.images.map((image) => image.source);
    expect(sources.every((source) => 'url' in source)).toBe(true);
    const first = sources[0]!;
    if (!('url' in first)) throw new Error('expected a URL source');
    expect(first.url.startsWith('http://edge.test/internal/runner/inputs?')).toBe(true);

    const fetched = await call(pathOf(first.url));
    expect(fetched.status).toBe(200);
    // Compared by hash: a deep equality over megabytes is slow in the test runner.
    expect(await sha256Hex(new Uint8Array(await fetched.arrayBuffer()))).toBe(first.sha256);
    expect(first.sha256).toBe(await sha256Hex(big));

    const tampered = new URL(first.url);
    tampered.searchParams.set('key', tampered.searchParams.get('key')!.replace('tenants/', 'tenants/x'));
    await expectError(await call(pathOf(tampered.toString())), 403, 'invalid_signature');
    const expired = await signedInputUrl('http://edge.test', testEnv.RUNNER_SECRET, new URL(first.url).searchParams.get('key')!, Date.now() - 2 * 3600_000);
    await expectError(await call(pathOf(expired)), 403, 'invalid_signature');
  });
});
