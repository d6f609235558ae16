import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pacedLoad, quantile } from './paced-load.ts';

let server: Server;
let base: string;
const arrivals: number[] = [];
const keys: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    arrivals.push(performance.now());
    keys.push(String(req.headers.authorization));
    if (req.url === '/hang') return; // never answers
    res.statusCode = req.url === '/fail' ? 503 : 200;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

describe('paced open-loop load', () => {
  it('sends rate × duration requests evenly spaced, not in bursts, with the headers of each index', async () => {
    arrivals.length = 0;
    keys.length = 0;
    const result = await pacedLoad({ url: `${base}/ok`, rate: 200, durationS: 0.5, maxSockets: 20, timeoutMs: 2000, headers: (i) => ({ authorization: `key-${i % 3}` }) });
    expect(result.requests.total).toBe(100);
    expect(result.errors + result.timeouts + result.non2xx).toBe(0);
    expect(result.statusCodeStats).toEqual({ 200: { count: 100 } });
    expect(new Set(keys)).toEqual(new Set(['key-0', 'key-1', 'key-2']));
    // Spread over the half second at 5 ms apart, not sent at once: the mean gap is about 5 ms, and no 5 ms window holds
    // a burst (autocannon's overallRate would send the 20 sockets' shares together). Loose bounds: a busy machine
    // fires timers late, and the due requests then leave together.
    const meanGap = (arrivals.at(-1)! - arrivals[0]!) / (arrivals.length - 1);
    expect(meanGap).toBeGreaterThan(4);
    expect(meanGap).toBeLessThan(12);
    const most = Math.max(...arrivals.map((t) => arrivals.filter((u) => u >= t && u < t + 5).length));
    expect(most).toBeLessThanOrEqual(10);
  });

  it('counts non-2xx answers and timeouts apart from errors', async () => {
    const failing = await pacedLoad({ url: `${base}/fail`, rate: 100, durationS: 0.1, maxSockets: 5, timeoutMs: 2000 });
    expect(failing).toMatchObject({ errors: 0, timeouts: 0, non2xx: 10, statusCodeStats: { 503: { count: 10 } } });
    const hanging = await pacedLoad({ url: `${base}/hang`, rate: 50, durationS: 0.1, maxSockets: 5, timeoutMs: 200 });
    expect(hanging).toMatchObject({ errors: 0, timeouts: 5, non2xx: 0, errorCodes: {} });
    const refused = await pacedLoad({ url: 'http://127.0.0.1:1/', rate: 50, durationS: 0.1, maxSockets: 5, timeoutMs: 200 });
    expect(refused).toMatchObject({ errors: 5, timeouts: 0, errorCodes: { ECONNREFUSED: 5 } });
    expect(hanging.latency.max).toBeGreaterThanOrEqual(200);
  });

  it('takes quantiles by nearest rank and refuses a rate or duration that is not positive', async () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(quantile([], 0.5)).toBe(0);
    await expect(pacedLoad({ url: base, rate: 0, durationS: 1, maxSockets: 1, timeoutMs: 10 })).rejects.toThrow(/must be positive/);
  });
});
