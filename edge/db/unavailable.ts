// Which failures mean "PostgreSQL cannot be reached right now" (down, restarting, failing over, out of connections),
// as opposed to a bug or a bad query: those are answered 503 with Retry-After (docs/api.md), the rest 500.
// drizzle wraps the driver's error as `cause`, so the whole chain is looked at.

/**
 * SQLSTATE classes and codes from PostgreSQL's Appendix A ("PostgreSQL Error Codes"): 08 connection exception
 * (08006 is also what the local stack's pool and Hyperdrive-like proxies send when the server is unreachable),
 * 57P01-57P03 admin/crash shutdown and "the database system is starting up", 53300 too many connections.
 */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[1-3]|53300)$/;
/** postgres.js's own connection error codes, and socket errors under Node. */
const UNAVAILABLE_CLIENT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
]);
/** workerd's socket failures carry no code, only these messages. */
const UNAVAILABLE_SOCKET_MESSAGES = /^(Network connection lost\.?|Stream was cancelled\.?|proxy request failed.*|connect ECONNREFUSED.*)$/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Object && depth < 8; current = (current as { cause?: unknown }).cause, depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_CLIENT_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
    if (typeof message === 'string' && UNAVAILABLE_SOCKET_MESSAGES.test(message)) return true;
  }
  return false;
}
