import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { TlsMaterial } from "@cls/server";

export interface IngressRoute {
  /** e.g. "/cls.allocation.v1." */
  pathPrefix: string;
  /** The service's public URL, e.g. https://localhost:40123. */
  target: string;
}

/** What the ingress saw of the network: who connected to it, and where it connected from. */
export interface IngressObservations {
  /** Remote addresses of the connections clients made to the ingress. */
  clientPeers: string[];
  /** Local addresses of the ingress's connections to the services: the peers the services saw. */
  upstreamLocalAddresses: string[];
  /** The forwarding headers the ingress added to calls, as a real ingress controller does. */
  forwardedHeaders: http2.OutgoingHttpHeaders[];
}

export interface Ingress {
  url: string;
  observed: IngressObservations;
  close(): Promise<void>;
}

/**
 * An HTTPS ingress like a Kubernetes ingress controller's: one host routing each call by path
 * prefix to a service's public port, adding the client's address in `x-forwarded-for`,
 * `x-real-ip` and `forwarded` (so the services are offered the address, and must not keep it),
 * and connecting to the services from `upstreamLocalAddress`.
 */
export async function startObservingIngress(options: { tls: TlsMaterial; routes: IngressRoute[]; upstreamLocalAddress?: string }): Promise<Ingress> {
  const observed: IngressObservations = { clientPeers: [], upstreamLocalAddresses: [], forwardedHeaders: [] };
  const sessions = new Map<string, http2.ClientHttp2Session>();
  const sessionFor = (target: string) => {
    let session = sessions.get(target);
    if (!session || session.closed || session.destroyed) {
      const created = http2.connect(target, { ca: options.tls.cert, ...(options.upstreamLocalAddress ? { localAddress: options.upstreamLocalAddress } : {}) });
      created.on("error", () => sessions.delete(target));
      created.once("connect", () => observed.upstreamLocalAddresses.push(String(created.socket.localAddress)));
      sessions.set(target, created);
      session = created;
    }
    return session;
  };
  const server = http2.createSecureServer({ cert: options.tls.cert, key: options.tls.key });
  server.on("secureConnection", (socket: Socket) => observed.clientPeers.push(String(socket.remoteAddress)));
  server.on("sessionError", () => {});
  server.on("tlsClientError", () => {});
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const path = String(headers[":path"] ?? "");
    const route = options.routes.find((r) => path.startsWith(r.pathPrefix));
    if (!route) {
      stream.respond({ ":status": 404 });
      stream.end();
      return;
    }
    const client = stream.session?.socket.remoteAddress ?? "";
    const forwarding = { "x-forwarded-for": client, "x-real-ip": client, forwarded: `for=${client};proto=https` };
    observed.forwardedHeaders.push(forwarding);
    const forwarded: http2.OutgoingHttpHeaders = { ...forwarding };
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith(":") || name === ":method" || name === ":path") forwarded[name] = value;
    }
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = sessionFor(route.target).request(forwarded);
    } catch {
      stream.respond({ ":status": 502 });
      stream.end();
      return;
    }
    let trailers: http2.IncomingHttpHeaders | undefined;
    upstream.on("response", (responseHeaders) => {
      if (stream.headersSent || stream.destroyed) return;
      const { ":status": status, ...rest } = responseHeaders;
      stream.respond({ ":status": status ?? 502, ...rest }, { waitForTrailers: true });
    });
    upstream.on("trailers", (received) => (trailers = received));
    stream.on("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
    upstream.on("error", () => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    stream.on("close", () => {
      if (!upstream.destroyed) upstream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.pipe(upstream);
    upstream.pipe(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    observed,
    async close() {
      for (const session of sessions.values()) session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
