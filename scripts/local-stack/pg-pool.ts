// A small PostgreSQL connection pool for the local stack, standing in for Hyperdrive. A Worker cannot keep a socket
// across requests, so the edge opens a connection per request; in production Hyperdrive answers that connection and
// hands the queries to a warm server connection. Locally each such connection used to start a PostgreSQL backend
// (fork, password check, catalog caches), several milliseconds of CPU per request. This pool answers the startup
// itself and lends each client connection a warm server connection for the client's whole session (session pooling),
// resetting it with DISCARD ALL before the next client gets it. Loopback only; clients must present the target's
// user, database and password.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';

export interface PgPoolOptions {
  /** The real server, e.g. postgres://user:password@127.0.0.1:5432/db. */
  readonly targetUrl: string;
  /** Where the pool listens on 127.0.0.1; 0 picks a free port. */
  readonly port?: number;
  /** Server connections per distinct set of startup parameters; clients beyond it wait for one. */
  readonly maxServerConnections?: number;
}

export interface PgPool {
  /** targetUrl with the pool's host and port. */
  readonly url: string;
  readonly port: number;
  /** Server connections opened so far, and client sessions served: a warm pool serves many sessions per connection. */
  stats(): { serverConnectionsOpened: number; clientSessions: number; idle: number };
  close(): Promise<void>;
}

const DEFAULT_MAX_SERVER_CONNECTIONS = 20;
const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Startup parameters that only label the client; they do not change what the session does. */
const LABEL_PARAMETERS = new Set(['application_name']);

type Target = { host: string; port: number; user: string; password: string; database: string };

function parseTarget(url: string): Target {
  const parsed = new URL(url);
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`not a PostgreSQL URL: ${parsed.protocol}`);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username),
  };
}

// ---- protocol framing ----

function message(type: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

const int32 = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(value);
  return b;
};
const cstring = (value: string) => Buffer.from(`${value}\0`, 'utf8');

function errorResponse(sqlState: string, text: string): Buffer {
  return message('E', Buffer.concat([cstring('SFATAL'), cstring('VFATAL'), cstring(`C${sqlState}`), cstring(`M${text}`), Buffer.from([0])]));
}

/** Splits a byte stream into typed messages (type byte, int32 length including itself, payload). */
class MessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): { type: string; payload: Buffer; raw: Buffer }[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const out: { type: string; payload: Buffer; raw: Buffer }[] = [];
    let offset = 0;
    while (this.buffer.length - offset >= 5) {
      const length = this.buffer.readInt32BE(offset + 1);
      if (this.buffer.length - offset < length + 1) break;
      const raw = this.buffer.subarray(offset, offset + length + 1);
      out.push({ type: String.fromCharCode(raw[0]!), payload: raw.subarray(5), raw });
      offset += length + 1;
    }
    this.buffer = this.buffer.subarray(offset);
    return out;
  }
  /** Bytes received past the messages returned so far. */
  rest(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}

// ---- server connections ----

type ServerConnection = {
  socket: Socket;
  reader: MessageReader;
  /** ParameterStatus messages of its startup, replayed to every client it serves. */
  parameterStatus: Buffer[];
  closed: boolean;
  onMessage: (type: string, payload: Buffer, raw: Buffer) => void;
  /** Set by the client session that holds the connection. */
  onClose: () => void;
};

function scramClient(password: string) {
  const clientNonce = randomBytes(18).toString('base64');
  const firstBare = `n=*,r=${clientNonce}`;
  let expectedServerSignature = '';
  return {
    first: () => {
      const mechanism = cstring('SCRAM-SHA-256');
      const data = Buffer.from(`n,,${firstBare}`);
      return message('p', Buffer.concat([mechanism, int32(data.length), data]));
    },
    continue(serverFirst: string): Buffer {
      const attrs = Object.fromEntries(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
      if (!attrs.r?.startsWith(clientNonce)) throw new Error('SCRAM: the server nonce does not extend ours');
      const salted = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(attrs.s ?? '', 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = createHash('sha256').update(clientKey).digest();
      const finalWithoutProof = `c=biws,r=${attrs.r}`;
      const authMessage = `${firstBare},${serverFirst},${finalWithoutProof}`;
      const signature = createHmac('sha256', storedKey).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!));
      const serverKey = createHmac('sha256', salted).update('Server Key').digest();
      expectedServerSignature = createHmac('sha256', serverKey).update(authMessage).digest('base64');
      return message('p', Buffer.from(`${finalWithoutProof},p=${proof.toString('base64')}`));
    },
    verifyFinal(serverFinal: string): void {
      if (serverFinal !== `v=${expectedServerSignature}`) throw new Error('SCRAM: the server signature does not match');
    },
  };
}

/** Opens and authenticates a server connection with the given startup parameters. */
function openServerConnection(target: Target, parameters: Record<string, string>): Promise<ServerConnection> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.setNoDelay(true);
    const reader = new MessageReader();
    const parameterStatus: Buffer[] = [];
    const connection: ServerConnection = { socket, reader, parameterStatus, closed: false, onMessage: () => {}, onClose: () => {} };
    let ready = false;
    let scram: ReturnType<typeof scramClient> | undefined;
    const fail = (error: Error) => {
      socket.destroy();
      if (!ready) reject(error);
    };
    socket.once('error', (error) => fail(error));
    socket.once('close', () => {
      connection.closed = true;
      connection.onClose();
      if (!ready) reject(new Error('PostgreSQL closed the connection during startup'));
    });
    socket.connect(target.port, target.host, () => {
      const body = Buffer.concat([int32(PROTOCOL_3), ...Object.entries(parameters).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
      socket.write(Buffer.concat([int32(body.length + 4), body]));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const { type, payload, raw } of reader.push(chunk)) {
        if (ready) {
          connection.onMessage(type, payload, raw);
          continue;
        }
        try {
          if (type === 'R') {
            const code = payload.readInt32BE(0);
            if (code === 0) continue;
            if (code === 3) socket.write(message('p', cstring(target.password)));
            else if (code === 5) {
              const inner = createHash('md5').update(target.password + target.user).digest('hex');
              const outer = createHash('md5').update(Buffer.concat([Buffer.from(inner), payload.subarray(4, 8)])).digest('hex');
              socket.write(message('p', cstring(`md5${outer}`)));
            } else if (code === 10) {
              if (!payload.subarray(4).toString().split('\0').includes('SCRAM-SHA-256')) throw new Error('the server offers no SCRAM-SHA-256');
              scram = scramClient(target.password);
              socket.write(scram.first());
            } else if (code === 11 && scram) socket.write(scram.continue(payload.subarray(4).toString()));
            else if (code === 12 && scram) scram.verifyFinal(payload.subarray(4).toString());
            else throw new Error(`unsupported authentication request ${code}`);
          } else if (type === 'S') parameterStatus.push(Buffer.from(raw));
          else if (type === 'E') throw new Error(`PostgreSQL refused the connection: ${errorText(payload)}`);
          else if (type === 'Z') {
            ready = true;
            resolve(connection);
          }
        } catch (error) {
          fail(error as Error);
        }
      }
    });
  });
}

function errorText(payload: Buffer): string {
  const fields = payload.toString('utf8').split('\0');
  return fields.find((f) => f.startsWith('M'))?.slice(1) ?? 'unknown error';
}

// ---- the pool ----

class ServerPool {
  private idle: ServerConnection[] = [];
  private waiters: ((connection: ServerConnection | Error) => void)[] = [];
  private open = 0;
  opened = 0;

  constructor(
    private readonly target: Target,
    private readonly parameters: Record<string, string>,
    private readonly max: number,
  ) {}

  get idleCount() {
    return this.idle.length;
  }

  acquire(): Promise<ServerConnection> {
    while (this.idle.length) {
      const connection = this.idle.pop()!;
      if (!connection.closed) return Promise.resolve(connection);
    }
    if (this.open < this.max) return this.create();
    return new Promise((resolve, reject) => this.waiters.push((c) => (c instanceof Error ? reject(c) : resolve(c))));
  }

  private async create(): Promise<ServerConnection> {
    this.open++;
    try {
      const connection = await openServerConnection(this.target, this.parameters);
      this.opened++;
      connection.socket.on('close', () => {
        this.open--;
        this.idle = this.idle.filter((c) => c !== connection);
        this.serveWaiter();
      });
      return connection;
    } catch (error) {
      this.open--;
      this.serveWaiter();
      throw error;
    }
  }

  /** A waiter gets a fresh connection when one closed and left room. */
  private serveWaiter() {
    const waiter = this.waiters.shift();
    if (waiter) this.create().then(waiter, waiter);
  }

  /** Resets the connection's session (DISCARD ALL) and lends it to the next waiter, or keeps it idle. */
  release(connection: ServerConnection) {
    connection.onClose = () => {};
    if (connection.closed) return;
    let ready = false;
    connection.onMessage = (type, payload) => {
      if (type === 'E') {
        connection.socket.destroy();
        return;
      }
      if (type !== 'Z' || ready) return;
      ready = true;
      connection.onMessage = () => {};
      if (payload.toString('latin1', 0, 1) !== 'I') {
        connection.socket.destroy();
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(connection);
      else this.idle.push(connection);
    };
    connection.socket.write(message('Q', cstring('DISCARD ALL')));
  }

  discard(connection: ServerConnection) {
    connection.socket.destroy();
  }

  close() {
    for (const waiter of this.waiters.splice(0)) waiter(new Error('the pool is closing'));
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }
}

export async function startPgPool(options: PgPoolOptions): Promise<PgPool> {
  const target = parseTarget(options.targetUrl);
  const max = options.maxServerConnections ?? DEFAULT_MAX_SERVER_CONNECTIONS;
  const pools = new Map<string, ServerPool>();
  const clients = new Set<Socket>();
  let clientSessions = 0;

  const poolFor = (parameters: Record<string, string>) => {
    const key = JSON.stringify(Object.entries(parameters).sort(([a], [b]) => a.localeCompare(b)));
    let pool = pools.get(key);
    if (!pool) pools.set(key, (pool = new ServerPool(target, parameters, max)));
    return pool;
  };

  const server: Server = createServer((client) => {
    clients.add(client);
    client.setNoDelay(true);
    client.once('close', () => clients.delete(client));
    client.on('error', () => client.destroy());
    serveClient(client);
  });

  function serveClient(client: Socket) {
    let startup: Buffer = Buffer.alloc(0);
    let phase: 'startup' | 'password' | 'session' | 'refused' = 'startup';
    let parameters: Record<string, string> = {};
    const reader = new MessageReader();
    let serverConnection: ServerConnection | undefined;
    let pool: ServerPool | undefined;
    /** Sync and Query messages the server has not answered with ReadyForQuery yet. */
    let pending = 0;
    let status = 'I';
    let finished = false;

    const refuse = (sqlState: string, text: string) => {
      client.end(errorResponse(sqlState, text));
      phase = 'refused';
    };

    const finish = () => {
      if (finished) return;
      finished = true;
      if (!serverConnection || !pool) return;
      // A session that ends mid-query or inside a transaction leaves state behind: close that server connection.
      if (pending === 0 && status === 'I') pool.release(serverConnection);
      else pool.discard(serverConnection);
      serverConnection = undefined;
    };
    client.once('close', finish);

    const onStartup = (chunk: Buffer) => {
      startup = Buffer.concat([startup, chunk]);
      while (startup.length >= 8) {
        const length = startup.readInt32BE(0);
        if (startup.length < length) return;
        const code = startup.readInt32BE(4);
        const body = startup.subarray(8, length);
        startup = startup.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          client.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST) {
          client.destroy();
          return;
        }
        if (code !== PROTOCOL_3) return refuse('08P01', `unsupported protocol ${code >> 16}.${code & 0xffff}`);
        const fields = body.toString('utf8').split('\0');
        parameters = {};
        for (let i = 0; i + 1 < fields.length && fields[i] !== ''; i += 2) parameters[fields[i]!] = fields[i + 1]!;
        parameters.database ??= parameters.user ?? '';
        if (parameters.user !== target.user) return refuse('28000', `the pool serves user "${target.user}" only`);
        if (parameters.database !== target.database) return refuse('3D000', `the pool serves database "${target.database}" only`);
        phase = 'password';
        client.write(message('R', int32(3)));
        const rest = startup;
        startup = Buffer.alloc(0);
        if (rest.length) onMessages(rest);
        return;
      }
    };

    const onMessages = (chunk: Buffer) => {
      for (const { type, payload, raw } of reader.push(chunk)) {
        if (phase === 'password') {
          if (type !== 'p') return refuse('08P01', 'expected a password message');
          const given = Buffer.from(payload.subarray(0, Math.max(0, payload.length - 1)));
          const expected = Buffer.from(target.password);
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
            return refuse('28P01', `password authentication failed for user "${target.user}"`);
          }
          phase = 'session';
          void startSession();
          continue;
        }
        if (!serverConnection) {
          queued.push(raw);
          continue;
        }
        forward(type, raw);
      }
    };

    /** Client messages that arrive while the session waits for a server connection. */
    const queued: Buffer[] = [];
    const forward = (type: string, raw: Buffer) => {
      if (type === 'X') {
        finish();
        client.end();
        return;
      }
      if (type === 'S' || type === 'Q') pending++;
      serverConnection!.socket.write(raw);
    };

    const startSession = async () => {
      const sessionParameters = Object.fromEntries(Object.entries(parameters).filter(([k]) => !LABEL_PARAMETERS.has(k)));
      pool = poolFor(sessionParameters);
      let connection: ServerConnection;
      try {
        connection = await pool.acquire();
      } catch (error) {
        return refuse('08006', `the pool cannot reach PostgreSQL: ${(error as Error).message}`);
      }
      if (finished || client.destroyed) {
        pool.release(connection);
        return;
      }
      clientSessions++;
      serverConnection = connection;
      connection.onMessage = (type, payload, raw) => {
        if (type === 'Z') {
          pending = Math.max(0, pending - 1);
          status = payload.toString('latin1', 0, 1);
        }
        client.write(raw);
      };
      connection.onClose = () => client.destroy();
      client.write(
        Buffer.concat([message('R', int32(0)), ...connection.parameterStatus, message('K', Buffer.concat([int32(process.pid), int32(0)])), message('Z', Buffer.from('I'))]),
      );
      for (const raw of queued.splice(0)) forward(String.fromCharCode(raw[0]!), raw);
    };

    client.on('data', (chunk: Buffer) => {
      if (phase === 'startup') onStartup(chunk);
      else if (phase !== 'refused') onMessages(chunk);
    });
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const address = server.address();
      if (address && typeof address === 'object') resolve(address.port);
      else reject(new Error('the pool has no port'));
    });
  });
  const url = new URL(options.targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    port,
    stats: () => ({
      serverConnectionsOpened: [...pools.values()].reduce((sum, p) => sum + p.opened, 0),
      clientSessions,
      idle: [...pools.values()].reduce((sum, p) => sum + p.idleCount, 0),
    }),
    close: async () => {
      for (const pool of pools.values()) pool.close();
      for (const client of clients) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
