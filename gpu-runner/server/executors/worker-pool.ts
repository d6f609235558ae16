// Several executors (each a worker thread with its own models) behind one JobExecutor, so RUNNER_CONCURRENCY jobs run
// on separate threads: one job's tensor math between steps does not wait for another's, and a thread that dies takes
// only its own job down. Each job goes to the worker with the fewest jobs in flight (the queue's concurrency equals
// the pool size, so that is an idle one).
import type { ExecutionContext, GenerateInput, GenerateOutput, JobExecutor, PersonalizeInput, PersonalizeOutput } from '../jobs/executor.ts';
import type { SessionKindStatus } from '../../onnx/runtime/index.ts';

export class WorkerPoolExecutor implements JobExecutor {
  private readonly inFlight: number[];

  constructor(private readonly workers: readonly JobExecutor[]) {
    if (workers.length === 0) throw new RangeError('a worker pool needs at least one executor');
    this.inFlight = workers.map(() => 0);
  }

  get size(): number {
    return this.workers.length;
  }

  get description(): string {
    const first = this.workers[0]!.description;
    return this.workers.length === 1 ? first : `${first} × ${this.workers.length}`;
  }

  get warnings(): readonly string[] {
    return [...new Set(this.workers.flatMap((worker) => worker.warnings ?? []))];
  }

  /** Each kind as the workers report it; a kind that failed in any worker reports that failure. */
  sessionKinds(): Record<string, SessionKindStatus> {
    const merged: Record<string, SessionKindStatus> = {};
    for (const worker of this.workers) {
      for (const [kind, status] of Object.entries(worker.sessionKinds?.() ?? {})) {
        if (!merged[kind] || (status.error && !merged[kind].error)) merged[kind] = status;
      }
    }
    return merged;
  }

  async warmup(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.warmup()));
  }

  personalize(input: PersonalizeInput, context: ExecutionContext): Promise<PersonalizeOutput> {
    return this.onLeastBusy((worker) => worker.personalize(input, context));
  }

  generate(input: GenerateInput, context: ExecutionContext): Promise<GenerateOutput> {
    return this.onLeastBusy((worker) => worker.generate(input, context));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
  }

  private async onLeastBusy<T>(call: (worker: JobExecutor) => Promise<T>): Promise<T> {
    let index = 0;
    for (let i = 1; i < this.inFlight.length; i++) if (this.inFlight[i]! < this.inFlight[index]!) index = i;
    this.inFlight[index]!++;
    try {
      return await call(this.workers[index]!);
    } finally {
      this.inFlight[index]!--;
    }
  }
}
