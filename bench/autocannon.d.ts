// The part of autocannon 8's programmatic API that bench/edge.ts uses (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      amount?: number;
      maxOverallRequests?: number;
      headers?: Record<string, string>;
      method?: string;
      body?: string | Buffer;
      /** Requests a second over all connections, each connection's share sent back to back at each second's start. */
      overallRate?: number;
      timeout?: number;
      /** Per-request hooks; `setupRequest` may change each request before it is sent. */
      requests?: { setupRequest?: (request: RequestParams) => RequestParams }[];
    }
    interface RequestParams {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string;
    }
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p90: number;
      p99: number;
    }
    interface Result {
      latency: Histogram;
      requests: Histogram;
      throughput: Histogram;
      errors: number;
      timeouts: number;
      non2xx: number;
      statusCodeStats?: Record<string, { count: number }>;
      duration: number;
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>;
  export default autocannon;
}
