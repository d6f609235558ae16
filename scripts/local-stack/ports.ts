// The local stack's ports: whether one answers, and free ones for a child process to listen on (the edge, the runner,
// PgBouncer, PostgreSQL). A port the kernel hands out with listen(0) comes from its ephemeral range, the range it also
// takes outgoing connections' local ports from: in the moment between the probe closing and the child binding, one of
// the stack's own outgoing connections can take it, and the child dies with EADDRINUSE (seen in CI: the runner, after
// the edge had opened its connections). A port below that range is never given to an outgoing connection, so only
// another listener can take it, and the probe sees those.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';

/** The lowest port handed out: above the well-known and most registered service ports. */
export const LOWEST_FREE_PORT = 20_000;
/** Where the range starts when the kernel does not say (IANA's dynamic range, macOS and Windows). */
const DEFAULT_EPHEMERAL_START = 49_152;
/** Random ports probed before falling back to one of the kernel's own. */
const ATTEMPTS = 64;
const HOST = '127.0.0.1';
/** How long a probe of a port that may be served waits for the connection. */
const PROBE_TIMEOUT_MS = 500;

/** The first port of the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range). */
export function ephemeralRangeStart(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): number {
  try {
    const first = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 && first <= 65_535 ? first : DEFAULT_EPHEMERAL_START;
  } catch {
    return DEFAULT_EPHEMERAL_START;
  }
}

function listenOnce(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, HOST, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : null));
    });
  });
}

/**
 * A port on 127.0.0.1 that nothing listens on, chosen at random below the ephemeral range; where that gap is too
 * narrow (or every probe is taken), one from the kernel, as before.
 */
export async function freePort(rangeStart = ephemeralRangeStart()): Promise<number> {
  const span = rangeStart - LOWEST_FREE_PORT;
  if (span >= 1_000) {
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      const port = await listenOnce(LOWEST_FREE_PORT + randomInt(span));
      if (port !== null) return port;
    }
  }
  const port = await listenOnce(0);
  if (port === null) throw new Error(`no free port on ${HOST}`);
  return port;
}

/** Whether something accepts connections on host:port (a server already there, or one that has come up). */
export function portAnswers(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}
