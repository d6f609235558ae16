// A reverse proxy in front of the edge that keeps every request's method, path and body as they came over the wire.
// A page opened on the proxy's address sends everything it fetches by relative path through it. Chromium's DevTools
// protocol leaves out the bytes of a body made from a Blob (a FormData file: playwright's postDataBuffer() is null),
// so a test that must show what a page sent, and what it did not, reads the bodies here.
import { createServer, request as forward, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as the browser asked. */
  readonly path: string;
  readonly body: Buffer;
}

export interface RecordingProxy {
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
}

/** Per connection, not per message (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept = { ...headers };
  for (const name of HOP_BY_HOP) delete kept[name];
  return kept;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: incoming.method ?? 'GET', path: incoming.url ?? '/', body });
      // The body is forwarded whole, so its length is known even when the browser streamed it in chunks.
      const headers: IncomingHttpHeaders = { ...endToEnd(incoming.headers), host: upstream.host };
      if (body.byteLength > 0) headers['content-length'] = String(body.byteLength);
      const request = forward(new URL(incoming.url ?? '/', upstream), { method: incoming.method, headers }, (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(outgoing);
      });
      request.on('error', (error) => outgoing.destroy(error));
      request.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
