import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { TlsMaterial } from "@cls/server";

export interface IngressRoute {
  /** e.g. "/cls.allocation.v1." */
  pathPrefix: string;
  /** The service's public URL, e.g. https://localhost:40123. */
  target: string;
}

/**
 * What the Kubernetes ingress does in front of CLS, for tests: one HTTPS host that routes
 * each call by path prefix to a service's public port over HTTP/2.
 */
export async function startIngress(options: { tls: TlsMaterial; routes: IngressRoute[] }): Promise<{ url: string; close(): Promise<void> }> {
  const sessions = new Map<string, http2.ClientHttp2Session>();
  const sessionFor = (target: string) => {
    let session = sessions.get(target);
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(target, { ca: options.tls.cert });
      session.on("error", () => sessions.delete(target));
      sessions.set(target, session);
    }
    return session;
  };
  const server = http2.createSecureServer({ cert: options.tls.cert, key: options.tls.key });
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"] ?? "");
    const route = options.routes.find((r) => path.startsWith(r.pathPrefix));
    if (!route) {
      stream.respond({ ":status": 404 });
      stream.end();
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith(":") || name === ":method" || name === ":path") forwarded[name] = value;
    }
    const upstream = sessionFor(route.target).request(forwarded);
    let trailers: http2.IncomingHttpHeaders | undefined;
    const gone = () => stream.destroyed || stream.closed;
    upstream.on("response", (responseHeaders) => {
      if (gone() || stream.headersSent) return;
      const { ":status": status, ...rest } = responseHeaders;
      stream.respond({ ":status": status ?? 502, ...rest }, { waitForTrailers: true });
    });
    upstream.on("trailers", (received) => (trailers = received));
    stream.on("wantTrailers", () => {
      if (!gone()) stream.sendTrailers(trailers ?? {});
    });
    upstream.on("error", () => {
      if (!gone()) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    stream.on("error", () => upstream.close(http2.constants.NGHTTP2_CANCEL));
    // A client that goes away (or is refused mid-upload) must not leave the upstream call open.
    stream.on("close", () => {
      if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.pipe(upstream);
    upstream.pipe(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const session of sessions.values()) session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
