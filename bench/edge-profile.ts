// A CPU profile of a Worker under `wrangler dev`, taken through its inspector port (the Chrome DevTools Protocol that
// workerd speaks), with each sample's self time charged to the source it came from: the bundle's source map names the
// original file (postgres.js, drizzle, zod, the OpenAPI layer, our middleware). For bench/edge.ts.
// Node 20 has WebSocket only behind --experimental-websocket (NODE_OPTIONS); Node 22 has it by default.
import { readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

type CallFrame = { functionName: string; url: string; scriptId: string; lineNumber: number; columnNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
export type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

/** Where a sample's time goes, in the order the write-up names them (bench/RESULTS.md). */
export const CATEGORIES = [
  ['connection + query (postgres.js)', /node_modules\/postgres\//],
  // drizzle's own source maps name its sources ../src/*.ts, which resolves beside the package, not inside it.
  ['query building + mapping (drizzle)', /node_modules\/(drizzle-orm|src)\//],
  ['OpenAPI layer (@hono/zod-openapi)', /node_modules\/(@hono\/zod-openapi|@asteasolutions)\//],
  ['validation + serialization (zod)', /node_modules\/zod\//],
  ['routing + middleware (hono)', /node_modules\/hono\//],
  ['key verification (edge auth)', /edge\/(middleware\/auth|lib\/api-key)/],
  ['other edge code', /(edge|contract|db)\//],
  ['Node compatibility layer', /^node:|node-internal|unenv|nodejs_compat|cloudflare-internal/],
] as const;

type Totals = Map<string, number>;

/** Samples' self time by category, microseconds; native frames (crypto, sockets, JSON) by their function name. */
export function attribute(profile: CpuProfile, sourceMaps: ReadonlyMap<string, SourceMap>): { byCategory: Totals; byFunction: Totals } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byCategory: Totals = new Map();
  const byFunction: Totals = new Map();
  const add = (map: Totals, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    if (!node) return;
    const frame = node.callFrame;
    let source = frame.url;
    const map = sourceMaps.get(frame.scriptId);
    if (map && frame.lineNumber >= 0) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string };
      if (entry.originalSource) source = entry.originalSource;
    }
    const name = frame.functionName || '(anonymous)';
    let category: string;
    // V8's own entries are (program), (garbage collector) and (idle); a frame without a script is built in.
    if (!source) category = /^\((program|garbage collector|idle)\)$/.test(name) ? `runtime ${name}` : `native ${name}`;
    else category = CATEGORIES.find(([, pattern]) => pattern.test(source))?.[0] ?? 'other JavaScript';
    add(byCategory, category, us);
    add(byFunction, `${name} ${source.replace(/^.*node_modules\//, '').replace(/^.*\/(edge|contract|db)\//, '$1/')}`, us);
  });
  return { byCategory, byFunction };
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** One DevTools session on the Worker's inspector (wrangler dev's --inspector-port). */
export async function openInspector(port: number) {
  if (typeof WebSocket === 'undefined') throw new Error('profiling needs WebSocket: Node 22, or NODE_OPTIONS=--experimental-websocket on Node 20');
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string; title?: string }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  // The inspector proxy (miniflare) refuses a connection without a loopback Origin; Node's WebSocket (undici) takes
  // headers in its non-standard second argument.
  const socket = new WebSocket(url, { headers: { origin: 'http://127.0.0.1' } } as unknown as string[]);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const sourceMapUrls = new Map<string, string>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, string> };
    if (message.method === 'Debugger.scriptParsed' && message.params?.sourceMapURL) {
      // wrangler names the bundle's map relative to the bundle (index.js.map beside index.js).
      const { scriptId, url: scriptUrl, sourceMapURL } = message.params;
      sourceMapUrls.set(scriptId!, sourceMapURL.startsWith('data:') || !scriptUrl ? sourceMapURL : new URL(sourceMapURL, scriptUrl).href);
    }
    if (message.id === undefined) return;
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.error) waiting?.reject(new Error(message.error.message));
    else waiting?.resolve(message.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    send,
    /** Source maps of the scripts the Worker runs, by script id (inline data: URLs or files). */
    async sourceMaps(): Promise<Map<string, SourceMap>> {
      const maps = new Map<string, SourceMap>();
      for (const [scriptId, url] of sourceMapUrls) {
        try {
          const text = url.startsWith('data:')
            ? Buffer.from(url.slice(url.indexOf(',') + 1), url.includes(';base64,') ? 'base64' : 'utf8').toString('utf8')
            : readFileSync(url.startsWith('file:') ? fileURLToPath(url) : url, 'utf8');
          maps.set(scriptId, new SourceMap(JSON.parse(text)));
        } catch {
          // A script without a readable map is charged by its bundle URL.
        }
      }
      return maps;
    },
    close: () => socket.close(),
  };
}

/** Profiles the Worker while `load` runs; `load` returns how many requests it completed. */
export async function profileDuring(port: number, load: () => Promise<number>, samplingIntervalUs = 200) {
  const inspector = await openInspector(port);
  try {
    await inspector.send('Debugger.enable');
    await inspector.send('Profiler.enable');
    await inspector.send('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await inspector.send('Profiler.start');
    const requests = await load();
    const { profile } = (await inspector.send('Profiler.stop')) as { profile: CpuProfile };
    const { byCategory, byFunction } = attribute(profile, await inspector.sourceMaps());
    return { profile, requests, byCategory, byFunction };
  } finally {
    inspector.close();
  }
}

/** Linux's clock tick (USER_HZ), which /proc/<pid>/stat counts CPU time in: 100 on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds used so far by each process name (workerd, pgbouncer, postgres, node, ...) from /proc; empty where there
 * is no /proc. Processes that ended between two readings are missed, so compare readings around one measurement.
 */
export function cpuByProcessName(): Map<string, number> {
  const totals = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return totals;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // comm is in parentheses and may hold spaces; the fields after it are space-separated (proc(5)).
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // utime and stime are fields 14 and 15 of the line, 12 and 13 after comm and state.
      const ticks = Number(fields[11]) + Number(fields[12]);
      totals.set(name, (totals.get(name) ?? 0) + ticks / CLOCK_TICKS_PER_SECOND);
    } catch {
      // The process ended while we read.
    }
  }
  return totals;
}

/** CPU milliseconds per request by process name between two readings of cpuByProcessName. */
export function cpuPerRequest(before: Map<string, number>, after: Map<string, number>, requests: number): Record<string, number> {
  const perRequest: Record<string, number> = {};
  for (const [name, seconds] of after) {
    const used = seconds - (before.get(name) ?? 0);
    if (used > 0.05) perRequest[name] = Number(((used * 1000) / Math.max(1, requests)).toFixed(2));
  }
  return perRequest;
}
