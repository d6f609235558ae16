export {
  configureSharedSessionHost,
  createSessionRunner,
  liveRunner,
  sharedSessionHost,
  shutdownSharedSessionHost,
  SessionHost,
  DEFAULT_CACHE_DIR,
  type OpenOptions,
  type RunOptions,
  type SessionDefaults,
  type SessionHostOptions,
  type SessionKind,
  type SessionKindStatus,
  type SessionRunner,
  type SessionRunnerOptions,
} from './session-host.ts';
export { SessionCache, modelDigest, sessionKey, DEFAULT_MAX_IDLE_SESSIONS, type AcquiredSession, type SessionOptions, type SessionCacheOptions, type SessionSource, type ModelSource, type GraphOptimizationLevel, type RuntimeLog } from './session-cache.ts';
export { knownCudaAvailability, providerCandidates, type ExecutionProvider, type ExecutionProviderPreference } from './execution-provider.ts';
export { float32Tensor, int64Tensor, boolTensor, float32Data, elementCount, type RuntimeTensor, type RuntimeTensorType, type RuntimeFeeds, type RuntimeOutputs, type TensorDataByType } from './tensor.ts';
