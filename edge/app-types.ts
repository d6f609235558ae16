import type { Database } from './db/client.ts';
import type { Env } from './env.ts';
import type { KeyRole } from './lib/api-keys.ts';

export type Principal = { keyId: string; role: KeyRole; tenantId: string | null };
export type IdempotencyContext = { key: string; requestHash: string } | null;

/** Side effects deferred until the request's transaction commits (edge/middleware/idempotency.ts, `afterCommit`). */
export type CommitActions = (() => Promise<unknown>)[];

export type AppEnv = {
  Bindings: Env;
  Variables: { db: Database; principal: Principal; idempotency: IdempotencyContext; afterCommit: CommitActions | undefined };
};
