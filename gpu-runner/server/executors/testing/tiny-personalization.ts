// What the executor tests share: a job context that never cancels, a deterministic 64 px face, and LiDB weights of
// that face made by a short HyperDreamBooth run (2 relax steps) on whatever pack the executor serves.
import type { ExecutionContext, RgbImage } from '../../jobs/executor.ts';
import type { ModelPackExecutor } from '../model-pack-executor.ts';

export const TEST_CONTEXT: ExecutionContext = { signal: new AbortController().signal, reportProgress: () => undefined };
export const TEST_FACE: RgbImage = { width: 64, height: 64, channels: 3, data: new Uint8Array(64 * 64 * 3).map((_, i) => (i * 7) % 251) };

/** The native LiDB file (fp32) of TEST_FACE personalized by `executor` (warmed up). */
export async function personalizedLidbFile(executor: ModelPackExecutor): Promise<Uint8Array> {
  const personalized = await executor.personalize(
    {
      jobId: 'job_p',
      method: 'hyperdreambooth',
      images: [TEST_FACE],
      finetune: { steps: 2, rank: 2, relax: 'lora', seed: 0, identifier_token: '[V]' },
      outputs: [{ format: 'lidb', dtype: 'fp32' }],
    },
    TEST_CONTEXT,
  );
  return personalized.files[0]!.bytes;
}
