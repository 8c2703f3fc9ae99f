import http2 from "node:http2";

/** One raw HTTP/2 request as a fuzzer sends it. */
export interface RawRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/** What came back: the HTTP status, headers and the whole body (or the stream's error). */
export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the stream failed before a response arrived (e.g. reset by the peer). */
  error?: string;
}

/**
 * A raw HTTP/2 client for CLS's public URL over TLS, trusting `ca`: the bytes on the wire are
 * exactly what the test wrote, with no Connect client in between to tidy them up.
 */
export class RawHttp2Client {
  #session: http2.ClientHttp2Session | undefined;

  constructor(
    private readonly url: string,
    private readonly ca: string,
  ) {}

  #connect(): http2.ClientHttp2Session {
    if (!this.#session || this.#session.closed || this.#session.destroyed) {
      const session = http2.connect(this.url, { ca: this.ca, settings: { maxConcurrentStreams: 256 } });
      session.on("error", () => {});
      this.#session = session;
    }
    return this.#session;
  }

  request(request: RawRequest, timeoutMs = 20_000): Promise<RawResponse> {
    return new Promise((resolve) => {
      const method = request.method ?? "POST";
      // GET and HEAD requests end with their headers; any other method (DELETE too) carries the body given.
      const bodiless = method === "GET" || method === "HEAD";
      const stream = this.#connect().request({ ":method": method, ":path": request.path, ...request.headers }, { endStream: bodiless });
      const chunks: Buffer[] = [];
      let status = 0;
      let headers: http2.IncomingHttpHeaders = {};
      let settled = false;
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status, headers, body: Buffer.concat(chunks), ...(error ? { error } : {}) });
      };
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      stream.on("response", (h) => {
        headers = h;
        status = Number(h[":status"] ?? 0);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => finish());
      stream.on("close", () => finish(status === 0 ? `stream closed without a response (code ${stream.rstCode})` : undefined));
      stream.on("error", (error) => finish(status === 0 ? error.message : undefined));
      if (bodiless) return;
      if (request.body !== undefined) {
        // The peer may answer and reset before reading everything (e.g. a body over the limit).
        stream.write(typeof request.body === "string" ? Buffer.from(request.body) : request.body, () => {});
      }
      stream.end();
    });
  }

  close(): void {
    this.#session?.close();
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight, keeping the order of results. */
export async function mapConcurrent<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(workers);
  return results;
}
