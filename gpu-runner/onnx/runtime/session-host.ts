// The main-thread side of session execution: a worker thread owns the sessions, and runners talk to it by message,
// so a long `session.run` never stalls the event loop (HTTP, heartbeats and timers keep running).
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider, ExecutionProviderPreference } from './execution-provider.ts';
import { transferList, type HostRequest, type OpenedSession, type WorkerInit, type WorkerReply } from './protocol.ts';
import type { ModelSource, RuntimeLog, SessionOptions, SessionSource } from './session-cache.ts';
import type { RuntimeFeeds, RuntimeOutputs } from './tensor.ts';
import type { ResidentStepRequest, ResidentStepResult, ResidentTrainerSpec } from './resident-trainer.ts';
import type { OptimizerState, ParamSet } from '../optim/types.ts';

/** `.cache/onnx` under the repository root, unless `HDB_ONNX_CACHE_DIR` says otherwise. */
export const DEFAULT_CACHE_DIR =
  process.env.HDB_ONNX_CACHE_DIR ?? fileURLToPath(new URL('../../../.cache/onnx/', import.meta.url));

export interface SessionHostOptions {
  /** Folder for onnxruntime's optimized models; `null` keeps the cache in memory only. */
  cacheDir?: string | null;
  maxIdleSessions?: number;
  log?: RuntimeLog;
  /** Settings for every session this host opens unless an open names its own (the runner's provider and threads). */
  defaults?: SessionDefaults;
}

/** The process's session settings (the runner's RUNNER_EXECUTION_PROVIDER and thread count). */
export interface SessionDefaults {
  executionProvider?: ExecutionProviderPreference;
  intraOpNumThreads?: number;
}

/**
 * What a session computes ('unet', 'vae-decoder', 'trainer', …): the host reports the provider each kind actually
 * runs on, so an operator sees per kind whether `auto` chose CUDA and `cuda` holds everywhere.
 */
export type SessionKind = string;

/**
 * What a session's graph computes in: 'fp16' for the sampling graphs built in half precision
 * (`../../models/precision.ts`), 'fp32' for every other graph (trainers never run in fp16).
 */
export type SessionPrecision = 'fp32' | 'fp16';

/** A kind's provider and precision as last opened, or why it could not be opened. */
export interface SessionKindStatus {
  readonly requested: ExecutionProviderPreference;
  readonly executionProvider?: ExecutionProvider;
  readonly precision?: SessionPrecision;
  /** Why `auto` runs on CPU. */
  readonly cudaUnavailable?: string;
  /** The open failed (with `cuda`: this kind cannot run on CUDA). */
  readonly error?: string;
}

export interface OpenOptions extends SessionOptions {
  /** Reported per kind by `sessionKinds()`; unlabelled sessions are not reported. */
  kind?: SessionKind;
  /** What the graph computes in, reported with the kind (a label: the graph itself decides); default 'fp32'. */
  precision?: SessionPrecision;
}

export interface RunOptions {
  /** Output names to compute (all outputs when absent). */
  fetches?: string[];
  /** Move the feed buffers to the worker instead of copying them; the caller's arrays are detached afterwards. */
  transfer?: boolean;
}

export interface SessionRunner {
  readonly key: string;
  readonly executionProvider: ExecutionProvider;
  /** Why an `auto` session runs on CPU (what the CUDA attempt reported). */
  readonly cudaUnavailable?: string;
  /** Whether the session came from the in-memory cache, the disk cache, or was built. */
  readonly source: SessionSource;
  /** Content digest of the model (opening the same bytes again finds the live session by it). */
  readonly digest: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** False once closed or once its host is gone (shut down, or its worker died): a cache holding it should reopen. */
  readonly alive: boolean;
  run(feeds: RuntimeFeeds, options?: RunOptions): Promise<RuntimeOutputs>;
  /** Releases this runner's hold on the session (idempotent); the session may stay cached for reuse. */
  close(): Promise<void>;
}

type Pending = { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void };
type Request = HostRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

const defaultLog: RuntimeLog = (event) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);

/** One worker thread and the sessions it owns. */
export class SessionHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  /** Digests of model bytes opened before (the bytes are treated as immutable once opened, like files at a path). */
  private readonly digests = new WeakMap<Uint8Array, string>();
  private readonly log: RuntimeLog;
  private readonly kinds = new Map<SessionKind, SessionKindStatus>();
  private defaults: SessionDefaults;
  private nextId = 1;
  private failure: Error | null = null;
  private shutdownPromise: Promise<void> | null = null;

  constructor(options: SessionHostOptions = {}) {
    this.log = options.log ?? defaultLog;
    this.defaults = { ...options.defaults };
    const init: WorkerInit = {
      cacheDir: options.cacheDir === undefined ? DEFAULT_CACHE_DIR : options.cacheDir,
      ...(options.maxIdleSessions === undefined ? {} : { maxIdleSessions: options.maxIdleSessions }),
    };
    this.worker = new Worker(new URL('./session-worker-entry.mjs', import.meta.url), { workerData: init });
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`session worker exited (code ${code})`)));
  }

  /** Whether the worker is gone (crashed or shut down); a dead host rejects every request. */
  get dead(): boolean {
    return this.failure !== null;
  }

  /** Replaces the settings later opens use when they name none (sessions already open keep theirs). */
  configure(defaults: SessionDefaults): void {
    this.defaults = { ...defaults };
  }

  /** The provider each labelled kind of session runs on (or why it failed), as last opened. */
  sessionKinds(): Record<SessionKind, SessionKindStatus> {
    return Object.fromEntries(this.kinds);
  }

  async open(model: ModelSource, openOptions: OpenOptions = {}): Promise<SessionRunner> {
    const { kind, precision = 'fp32', ...explicit } = openOptions;
    const options: SessionOptions = { ...withoutUndefined(this.defaults), ...withoutUndefined(explicit) };
    const requested = options.executionProvider ?? 'auto';
    try {
      const runner = await this.openWith(model, options);
      if (kind !== undefined) {
        const cuda = runner.cudaUnavailable ? { cudaUnavailable: runner.cudaUnavailable } : {};
        this.recordKind(kind, { requested, executionProvider: runner.executionProvider, precision, ...cuda });
      }
      return runner;
    } catch (error) {
      if (kind !== undefined) this.recordKind(kind, { requested, error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  private recordKind(kind: SessionKind, status: SessionKindStatus): void {
    const previous = this.kinds.get(kind);
    this.kinds.set(kind, status);
    if (previous?.executionProvider === status.executionProvider && previous?.precision === status.precision && previous?.error === status.error) return;
    // Once per kind and change: what `auto` chose (and why CPU), or that a kind failed to open.
    this.log({ event: 'onnx.session_kind', kind, ...status });
  }

  private async openWith(model: ModelSource, options: SessionOptions): Promise<SessionRunner> {
    // Bytes opened before are named by their digest: a live session is found without copying (tens of MB for a
    // model with inline weights) and hashing them again; only on a miss do the bytes travel.
    const digest = typeof model === 'string' ? undefined : this.digests.get(model);
    if (digest !== undefined) {
      const cached = await this.request({ kind: 'open.cached', digest, options });
      if (cached.kind === 'opened') return this.runnerFor(cached.session);
      if (cached.kind !== 'open.miss') throw new Error(`session worker: unexpected reply ${cached.kind} to open.cached`);
    }
    const reply = await this.request({ kind: 'open', model, options });
    if (reply.kind !== 'opened') throw new Error(`session worker: unexpected reply ${reply.kind} to open`);
    if (typeof model !== 'string') this.digests.set(model, reply.session.digest);
    return this.runnerFor(reply.session);
  }

  /**
   * Parameters and optimizer state kept in the worker beside the gradient session (`../training/trainer.ts` is the
   * API; these are its transport). The sessions must be held by open runners for the trainer's lifetime.
   */
  async openTrainer(sessionKey: string, spec: ResidentTrainerSpec, adamSessionKey?: string): Promise<number> {
    const reply = await this.request({ kind: 'trainer.open', sessionKey, spec, ...(adamSessionKey ? { adamSessionKey } : {}) });
    if (reply.kind !== 'trainer.opened') throw new Error(`session worker: unexpected reply ${reply.kind} to trainer.open`);
    return reply.trainerId;
  }

  /** Gives a trainer the session of its forward graph (held open by the caller), for loss-only requests. */
  async attachTrainerForward(trainerId: number, sessionKey: string): Promise<void> {
    const reply = await this.request({ kind: 'trainer.forward', trainerId, sessionKey });
    if (reply.kind !== 'done') throw new Error(`session worker: unexpected reply ${reply.kind} to trainer.forward`);
  }

  async trainerStep(trainerId: number, request: ResidentStepRequest, transfer = false): Promise<ResidentStepResult> {
    const reply = await this.request({ kind: 'trainer.step', trainerId, request }, transfer ? transferList(request.feeds) : []);
    if (reply.kind !== 'trainer.stepped') throw new Error(`session worker: unexpected reply ${reply.kind} to trainer.step`);
    return reply.result;
  }

  async trainerSnapshot(trainerId: number): Promise<{ params: ParamSet; state: OptimizerState }> {
    const reply = await this.request({ kind: 'trainer.snapshot', trainerId });
    if (reply.kind !== 'trainer.snapshot') throw new Error(`session worker: unexpected reply ${reply.kind} to trainer.snapshot`);
    return { params: reply.params, state: reply.state };
  }

  async closeTrainer(trainerId: number): Promise<void> {
    if (this.dead) return;
    await this.request({ kind: 'trainer.close', trainerId });
  }

  /** Frees every session and stops the worker; pending requests finish first (the worker handles them in order). */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      if (!this.failure) await this.request({ kind: 'shutdown' }).catch(() => undefined);
      await this.worker.terminate();
    })();
    return this.shutdownPromise;
  }

  private runnerFor(opened: OpenedSession): SessionRunner {
    let closed = false;
    const host = this;
    return {
      ...opened,
      get alive() {
        return !closed && !host.dead;
      },
      async run(feeds, options = {}) {
        if (closed) throw new Error(`session ${opened.key} is closed`);
        checkFeedNames(opened, feeds);
        const request: Request = { kind: 'run', key: opened.key, feeds, ...(options.fetches ? { fetches: options.fetches } : {}) };
        const reply = await host.request(request, options.transfer ? transferList(feeds) : []);
        if (reply.kind !== 'ran') throw new Error(`session worker: unexpected reply ${reply.kind} to run`);
        return reply.outputs;
      },
      async close() {
        if (closed || host.dead) return;
        closed = true;
        await host.request({ kind: 'close', key: opened.key });
      },
    };
  }


  private request(message: Request, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Keep the process alive only while work is outstanding, so an idle host never blocks exit.
      this.worker.ref();
      this.worker.postMessage({ ...message, id } as HostRequest, transfer);
    });
  }

  private onReply(reply: WorkerReply): void {
    if (reply.kind === 'log') {
      this.log(reply.event);
      return;
    }
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.kind === 'failed') pending.reject(new Error(reply.message));
    else pending.resolve(reply);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

function checkFeedNames(opened: OpenedSession, feeds: RuntimeFeeds): void {
  const unknown = Object.keys(feeds).filter((name) => !opened.inputNames.includes(name));
  const missing = opened.inputNames.filter((name) => !(name in feeds));
  if (unknown.length > 0 || missing.length > 0) {
    throw new Error(
      `session ${opened.key}: feeds do not match the inputs [${opened.inputNames.join(', ')}]` +
        (unknown.length ? `; unknown: ${unknown.join(', ')}` : '') +
        (missing.length ? `; missing: ${missing.join(', ')}` : ''),
    );
  }
}

/**
 * The runner a cache holds, if it is still usable; otherwise a fresh one from `open`, stored in its place. Caches of
 * sessions outlive a host that was shut down or crashed (a new shared host starts on the next use), so they reopen.
 */
export async function liveRunner<K extends object>(cache: WeakMap<K, Promise<SessionRunner>>, key: K, open: () => Promise<SessionRunner>): Promise<SessionRunner> {
  const cached = cache.get(key);
  const live = cached ? await cached.then((runner) => (runner.alive ? runner : undefined), () => undefined) : undefined;
  if (live) return live;
  const opened = open();
  cache.set(key, opened);
  // a failed open is not kept: the next caller tries again (and the kind reports the failure again)
  opened.catch(() => {
    if (cache.get(key) === opened) cache.delete(key);
  });
  return opened;
}

function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

let sharedHost: SessionHost | null = null;
let sharedDefaults: SessionDefaults = {};

/**
 * The process-wide host, started on first use (and again after a crash or shutdown), with the settings given to
 * `configureSharedSessionHost`.
 */
export function sharedSessionHost(): SessionHost {
  if (!sharedHost || sharedHost.dead) sharedHost = new SessionHost({ defaults: sharedDefaults });
  return sharedHost;
}

/**
 * Sets the provider and threads of every session the shared host opens from now on, unless an open names its own:
 * the runner calls it once with its configuration, so the hypernetwork, the encoders, the UNet and the trainers all
 * run where the operator said.
 */
export function configureSharedSessionHost(defaults: SessionDefaults): void {
  sharedDefaults = { ...defaults };
  if (sharedHost && !sharedHost.dead) sharedHost.configure(sharedDefaults);
}

export async function shutdownSharedSessionHost(): Promise<void> {
  const host = sharedHost;
  sharedHost = null;
  await host?.shutdown();
}

export interface SessionRunnerOptions extends OpenOptions {
  /** The host whose worker runs the session; the shared host when absent. */
  host?: SessionHost;
}

/**
 * Opens (or reuses) a session for a model in a worker thread and returns a runner for it:
 * `const runner = await createSessionRunner(bytes, { executionProvider: 'auto' }); await runner.run(feeds)`.
 */
export async function createSessionRunner(model: ModelSource, options: SessionRunnerOptions = {}): Promise<SessionRunner> {
  const { host, ...sessionOptions } = options;
  return (host ?? sharedSessionHost()).open(model, sessionOptions);
}
