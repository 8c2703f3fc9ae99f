import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { errorInterceptor } from "./error-interceptor.js";
import { loggingInterceptor } from "./logging-interceptor.js";
import { telemetryInterceptor } from "./telemetry-interceptor.js";
import { registerHealth, type ReadinessCheck } from "./health.js";
import type { TlsMaterial } from "./tls.js";

/** A service descriptor with its implementation, ready to be routed. */
export interface ServiceBinding {
  service: DescService;
  impl: Partial<ServiceImpl<DescService>>;
}

/** Binds an implementation to its descriptor, keeping the pair type-checked. */
export function bind<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceBinding {
  return { service, impl: impl as unknown as Partial<ServiceImpl<DescService>> };
}

export interface PortOptions {
  port: number;
  host?: string;
  services: readonly ServiceBinding[];
  /** Runs before the logging and error interceptors' handlers, e.g. authentication. */
  interceptors?: readonly Interceptor[];
}

export interface StartServersOptions {
  logger: Logger;
  /** Connect, gRPC and gRPC-web over HTTPS (HTTP/2 and HTTP/1.1) for EdgeVis Servers. */
  public: PortOptions & { tls: TlsMaterial };
  /** gRPC (and Connect) over cleartext HTTP/2 for vendor tools and other services; never exposed publicly. */
  internal: PortOptions;
  readiness: readonly ReadinessCheck[];
  /** Largest request message accepted, in bytes. */
  readMaxBytes?: number;
}

export interface RunningServers {
  publicUrl: string;
  internalUrl: string;
  /** Stops accepting calls, lets in-flight calls finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_READ_MAX_BYTES = 4 * 1024 * 1024;

function routesFor(options: PortOptions, readiness: readonly ReadinessCheck[]) {
  return (router: ConnectRouter) => {
    for (const binding of options.services) router.service(binding.service, binding.impl);
    registerHealth(router, options.services.map((binding) => binding.service.typeName), readiness);
  };
}

/** Starts the public and internal ports of one process. */
export async function startServers(options: StartServersOptions): Promise<RunningServers> {
  const { logger } = options;
  const readMaxBytes = options.readMaxBytes ?? DEFAULT_READ_MAX_BYTES;
  const interceptorsFor = (port: PortOptions): Interceptor[] => [
    telemetryInterceptor(),
    loggingInterceptor(logger),
    errorInterceptor(logger),
    ...(port.interceptors ?? []),
  ];

  const publicHandler = connectNodeAdapter({
    routes: routesFor(options.public, options.readiness),
    interceptors: interceptorsFor(options.public),
    readMaxBytes,
  });
  const internalHandler = connectNodeAdapter({
    routes: routesFor(options.internal, options.readiness),
    interceptors: interceptorsFor(options.internal),
    readMaxBytes,
  });

  const publicServer = http2.createSecureServer(
    { cert: options.public.tls.cert, key: options.public.tls.key, allowHTTP1: true },
    publicHandler,
  );
  const internalServer = http2.createServer({}, internalHandler);

  const tracked = [track(publicServer), track(internalServer)];
  const publicPort = await listen(publicServer, options.public.port, options.public.host ?? "0.0.0.0");
  const internalPort = await listen(internalServer, options.internal.port, options.internal.host ?? "0.0.0.0");

  return {
    publicUrl: `https://localhost:${publicPort}`,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    async close(graceMs = 10_000) {
      await Promise.all(tracked.map((t) => t.drain(graceMs)));
    },
  };
}

function listen(server: http2.Http2Server | http2.Http2SecureServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Remembers open sessions and sockets so shutdown can drain them. */
function track(server: http2.Http2Server | http2.Http2SecureServer) {
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  // A client that disconnects rudely must never take the process down.
  server.on("sessionError", () => {});
  server.on("tlsClientError", () => {});
  return {
    drain(graceMs: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        // GOAWAY: sessions finish their open streams and accept no new ones.
        for (const session of sessions) session.close();
      });
    },
  };
}
