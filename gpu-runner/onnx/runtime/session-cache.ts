// Sessions are expensive to build (graph optimization dominates for large models) and cheap to reuse, so each is built
// once per (graph, input shapes, execution provider, optimization level) and shared (docs/engine.md). Two tiers:
// memory (the live InferenceSession, reference-counted) and disk (onnxruntime's own optimized model, which loads with
// optimization disabled, skipping the expensive part on the next process start).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { InferenceSession, env as ortEnv } from 'onnxruntime-node';
import {
  providerCandidates,
  recordCudaAvailability,
  takeCpuFallbackNotice,
  type ExecutionProvider,
  type ExecutionProviderPreference,
} from './execution-provider.ts';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
/** Where an acquired session came from. */
export type SessionSource = 'memory' | 'disk' | 'built';

/**
 * `0` stops onnxruntime's intra-op threads from spin-waiting after a run. A service that alternates short compute with
 * I/O (the runner) otherwise has those threads burn the cores it needs for HTTP, PNG encoding and events
 * (bench:runner). Read from the environment because sessions live in worker threads, which share it.
 */
export const INTRA_OP_SPINNING_ENV = 'HDB_ORT_INTRA_OP_SPINNING';
export type RuntimeLog = (event: Record<string, unknown>) => void;

export interface SessionOptions {
  executionProvider?: ExecutionProviderPreference;
  /** The shapes the caller will feed; part of the key because a session may specialise to them. */
  inputShapes?: Record<string, readonly number[]>;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Threads for one operator; onnxruntime's default (all cores) when absent. */
  intraOpNumThreads?: number;
  /**
   * Write onnxruntime's optimized model to the disk tier. Default: for models given as bytes (always under 2 GB), not
   * for paths, whose weights usually sit in external data that the optimized copy would duplicate inline.
   */
  persistOptimized?: boolean;
}

export interface SessionCacheOptions {
  /** Folder for optimized models; `null` keeps the cache in memory only. */
  cacheDir: string | null;
  /** Idle sessions (no holder) kept alive for reuse; the least recently released beyond this are freed. */
  maxIdleSessions?: number;
  log?: RuntimeLog;
}

export interface AcquiredSession {
  key: string;
  session: InferenceSession;
  executionProvider: ExecutionProvider;
  source: SessionSource;
  /** The model's content digest (`modelDigest`): later opens of the same bytes can name it instead (`acquireCached`). */
  digest: string;
}

/** A model as bytes, or the path of an `.onnx` file (whose external data is resolved next to it). */
export type ModelSource = Uint8Array | string;

export const DEFAULT_MAX_IDLE_SESSIONS = 8;
const DEFAULT_OPTIMIZATION_LEVEL: GraphOptimizationLevel = 'all';
/** onnxruntime's severity 4 = fatal only: the CUDA probe's expected failure is not worth an error line. */
const QUIET_LOG_SEVERITY = 4;
/** Severity 3 = errors and above. */
const QUIET_WARNINGS_SEVERITY = 3;
/**
 * Session settings for the CUDA provider (reasons in README.md, "CUDA sessions"). onnxruntime-node hands the CUDA
 * provider only its `deviceId` (js/node/src/session_options_helper.cc), so cuDNN's convolution search and the arena's
 * growth keep onnxruntime's defaults (exhaustive search, power-of-two growth); these are the plain session options.
 */
export const CUDA_SESSION_OPTIONS = {
  executionProviders: [{ name: 'cuda', deviceId: 0 }],
  // Weights are allocated at their size by the device allocator instead of the BFC arena, which would round every
  // region up to a power of two (a 3.4 GB fp32 UNet would reserve far more than it holds).
  config: { 'session.use_device_allocator_for_initializers': '1' },
} as const;

/** onnxruntime refuses to serialize a model over 2 GB inline (protobuf limit), so bigger ones are not persisted. */
const MAX_PERSISTED_MODEL_BYTES = 2 ** 31 - 1;

interface Entry {
  key: string;
  session: InferenceSession;
  executionProvider: ExecutionProvider;
  holders: number;
  releasedAt: number;
}

const defaultLog: RuntimeLog = (event) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The key's environment part: an optimized model may contain kernels specific to this CPU and runtime build. */
function environmentFingerprint(): string {
  return [ortEnv.versions.node ?? 'unknown', platform(), arch(), cpus()[0]?.model ?? 'unknown-cpu'].join('|');
}

function canonicalShapes(shapes: Record<string, readonly number[]> | undefined): [string, number[]][] {
  return Object.entries(shapes ?? {})
    .map(([name, dims]): [string, number[]] => [name, [...dims]])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Content digest of the graph: the model bytes; for a path, the `.onnx` file plus its absolute location (external
 * data resolves relative to it). External data files are not hashed (they can be gigabytes): weights at a given path
 * are treated as immutable, so write changed weights to a new path.
 */
export function modelDigest(model: ModelSource): string {
  if (typeof model === 'string') {
    const path = resolve(model);
    return sha256(`${sha256(readFileSync(path))}|${path}`);
  }
  return sha256(model);
}

export function sessionKey(
  digest: string,
  executionProvider: ExecutionProvider,
  options: Pick<SessionOptions, 'inputShapes' | 'graphOptimizationLevel' | 'intraOpNumThreads'>,
): string {
  const parts = {
    digest,
    executionProvider,
    shapes: canonicalShapes(options.inputShapes),
    level: options.graphOptimizationLevel ?? DEFAULT_OPTIMIZATION_LEVEL,
    threads: options.intraOpNumThreads ?? 0,
    environment: environmentFingerprint(),
  };
  return sha256(JSON.stringify(parts)).slice(0, 40);
}

/** Builds and shares onnxruntime sessions. One instance per thread: sessions cannot cross threads. */
export class SessionCache {
  private readonly entries = new Map<string, Promise<Entry>>();
  /** Entries whose session is built, for synchronous lookup by key. */
  private readonly ready = new Map<string, Entry>();
  private readonly cacheDir: string | null;
  private readonly maxIdle: number;
  private readonly log: RuntimeLog;

  constructor(options: SessionCacheOptions) {
    this.cacheDir = options.cacheDir === null ? null : resolve(options.cacheDir);
    this.maxIdle = options.maxIdleSessions ?? DEFAULT_MAX_IDLE_SESSIONS;
    this.log = options.log ?? defaultLog;
    if (this.cacheDir) mkdirSync(this.cacheDir, { recursive: true });
  }

  /** Returns a session for the model, building it only on a miss. Pair every call with `release(key)`. */
  async acquire(model: ModelSource, options: SessionOptions = {}): Promise<AcquiredSession> {
    return this.acquireDigested(model, modelDigest(model), options);
  }

  /**
   * A session already in memory for the model with this digest (what `acquire` reported), without its bytes: no copy
   * of a large model to this thread and no hashing. Undefined when it is not live here (evicted, or never built): the
   * caller then acquires with the bytes. Pair a returned session with `release(key)`.
   */
  async acquireCached(digest: string, options: SessionOptions = {}): Promise<AcquiredSession | undefined> {
    for (const provider of providerCandidates(options.executionProvider ?? 'auto')) {
      const key = sessionKey(digest, provider, options);
      const existing = this.entries.get(key);
      if (!existing) continue;
      const entry = await existing.catch(() => undefined);
      if (!entry) continue;
      entry.holders += 1;
      return { key, session: entry.session, executionProvider: provider, source: 'memory', digest };
    }
    return undefined;
  }

  private async acquireDigested(model: ModelSource, digest: string, options: SessionOptions): Promise<AcquiredSession> {
    const preference = options.executionProvider ?? 'auto';
    let lastError: unknown;
    for (const provider of providerCandidates(preference)) {
      if (provider === 'cpu' && preference === 'auto') {
        const reason = takeCpuFallbackNotice();
        if (reason) this.log({ event: 'onnx.execution_provider', executionProvider: 'cpu', fallbackFrom: 'cuda', reason });
      }
      const key = sessionKey(digest, provider, options);
      const existing = this.entries.get(key);
      if (existing) {
        const entry = await existing;
        entry.holders += 1;
        return { key, session: entry.session, executionProvider: provider, source: 'memory', digest };
      }
      const pending = this.build(key, model, provider, options);
      const entryPromise = pending.then((built) => built.entry);
      entryPromise.catch(() => undefined); // the failure is handled below, through `pending`
      this.entries.set(key, entryPromise);
      try {
        const built = await pending;
        return { key, session: built.entry.session, executionProvider: provider, source: built.source, digest };
      } catch (error) {
        this.entries.delete(key);
        lastError = error;
        if (provider === 'cuda' && preference === 'auto') {
          recordCudaAvailability(false, (error as Error).message);
          continue;
        }
        throw error;
      }
    }
    throw lastError;
  }

  /** Drops one holder; an idle session stays cached until more than `maxIdleSessions` are idle. */
  async release(key: string): Promise<void> {
    const pending = this.entries.get(key);
    if (!pending) throw new Error(`session cache: release of unknown session ${key}`);
    const entry = await pending;
    if (entry.holders === 0) throw new Error(`session cache: session ${key} released more often than acquired`);
    entry.holders -= 1;
    entry.releasedAt = performance.now();
    await this.evictIdle();
  }

  /** The live session for a key that is currently held, or an error naming the key. */
  held(key: string): InferenceSession {
    const entry = this.ready.get(key);
    if (!entry || entry.holders === 0) throw new Error(`session cache: no held session ${key}`);
    return entry.session;
  }

  /** Number of live sessions (held or idle). */
  get size(): number {
    return this.entries.size;
  }

  /** Frees every session. */
  async dispose(): Promise<void> {
    const all = await Promise.allSettled(this.entries.values());
    this.entries.clear();
    this.ready.clear();
    for (const result of all) if (result.status === 'fulfilled') await result.value.session.release();
  }

  private optimizedPath(key: string): string | null {
    return this.cacheDir ? join(this.cacheDir, `${key}.optimized.onnx`) : null;
  }

  private async build(
    key: string,
    model: ModelSource,
    provider: ExecutionProvider,
    options: SessionOptions,
  ): Promise<{ entry: Entry; source: SessionSource }> {
    const level = options.graphOptimizationLevel ?? DEFAULT_OPTIMIZATION_LEVEL;
    const spinning = process.env[INTRA_OP_SPINNING_ENV];
    const config: Record<string, string> = {
      ...(spinning === '0' || spinning === '1' ? { 'session.intra_op.allow_spinning': spinning } : {}),
      ...(provider === 'cuda' ? CUDA_SESSION_OPTIONS.config : {}),
    };
    const base: InferenceSession.SessionOptions = {
      executionProviders: provider === 'cuda' ? CUDA_SESSION_OPTIONS.executionProviders : [provider],
      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      ...(Object.keys(config).length > 0 ? { extra: config } : {}),
      // Quiet only where CUDA is a probe (`auto`): with `cuda` asked for, onnxruntime's own warnings (nodes placed on
      // the CPU, say) are worth seeing.
      ...(provider === 'cuda' && (options.executionProvider ?? 'auto') === 'auto' ? { logSeverityLevel: QUIET_LOG_SEVERITY } : {}),
    };
    const startedAt = performance.now();
    // Only CPU sessions use the disk tier: the optimized model is specific to the provider that optimized it, and
    // only CPU is available where tests run to check the round trip.
    const optimized = provider === 'cpu' ? this.optimizedPath(key) : null;
    let session: InferenceSession;
    let source: SessionSource;
    if (optimized && existsSync(optimized)) {
      session = await InferenceSession.create(optimized, { ...base, graphOptimizationLevel: 'disabled' });
      source = 'disk';
    } else {
      const persist = optimized !== null && (options.persistOptimized ?? (typeof model !== 'string' && model.byteLength < MAX_PERSISTED_MODEL_BYTES));
      // Written under a unique name and renamed once complete, so a concurrent reader never sees half a file.
      const temporary = persist ? `${optimized}.${process.pid}.${randomBytes(4).toString('hex')}.tmp` : null;
      // Saving an 'all'-level model makes onnxruntime warn that it is hardware specific; the key already pins the
      // hardware (environmentFingerprint), so that warning is noise here.
      const persistOptions: InferenceSession.SessionOptions = temporary ? { optimizedModelFilePath: temporary, logSeverityLevel: QUIET_WARNINGS_SEVERITY } : {};
      const sessionOptions: InferenceSession.SessionOptions = { ...base, graphOptimizationLevel: level, ...persistOptions };
      try {
        session =
          typeof model === 'string'
            ? await InferenceSession.create(model, sessionOptions)
            : await InferenceSession.create(model, sessionOptions);
      } catch (error) {
        if (temporary) rmSync(temporary, { force: true });
        throw error;
      }
      if (temporary && optimized) {
        if (existsSync(temporary)) renameSync(temporary, optimized);
      }
      source = 'built';
    }
    if (provider === 'cuda') recordCudaAvailability(true);
    this.log({ event: 'onnx.session', key, executionProvider: provider, source, ms: Math.round(performance.now() - startedAt) });
    const entry: Entry = { key, session, executionProvider: provider, holders: 1, releasedAt: 0 };
    this.ready.set(key, entry);
    return { entry, source };
  }

  private async evictIdle(): Promise<void> {
    const settled = await Promise.allSettled(this.entries.values());
    const idle = settled.flatMap((result) => (result.status === 'fulfilled' && result.value.holders === 0 ? [result.value] : []));
    idle.sort((a, b) => a.releasedAt - b.releasedAt);
    for (const entry of idle.slice(0, Math.max(0, idle.length - this.maxIdle))) {
      this.entries.delete(entry.key);
      this.ready.delete(entry.key);
      await entry.session.release();
    }
  }
}
