import type { Database } from './db/client.ts';
import type { Env } from './env.ts';
import type { KeyRole } from './lib/api-keys.ts';

export type Principal = { keyId: string; role: KeyRole; tenantId: string | null };
export type IdempotencyContext = {
  key: string;
  requestHash: string;
  /** When this request claimed the key: the answer is saved only while the claim is still this one. */
  claimedAt: Date;
  /** Under idempotency({ transaction: 'handler' }): the handler's transaction wrote the answer (rememberAnswer). */
  answerWritten: boolean;
} | null;

/** Side effects deferred until the request's transaction commits (edge/middleware/idempotency.ts, `afterCommit`). */
export type CommitActions = (() => Promise<unknown>)[];

export type AppEnv = {
  Bindings: Env;
  Variables: {
    db: Database;
    /** Ends the request's database client and installs a fresh one (edge/middleware/database.ts). */
    releaseConnection: () => void;
    principal: Principal;
    idempotency: IdempotencyContext;
    afterCommit: CommitActions | undefined;
  };
};
