import { pino } from "pino";
import { startTestMesh, type TestMesh } from "../../support/mesh.js";
import { startObservingIngress, type IngressObservations } from "./ingress.js";
import { startRelay } from "./relay.js";

/** A test mesh whose logs are kept and whose clients all come from one distinctive address. */
export interface ObservedMesh extends TestMesh {
  /** Every line every service logged, at level trace. */
  logLines: string[];
  /** The Redis key prefixes this mesh's locks, revocations and counters use. */
  redisPrefixes: string[];
  /** The address the clients connect from, and what the harness saw of it on the wire. */
  clientAddress: string;
  observed: IngressObservations & { relayLocalAddresses: string[] };
}

/**
 * `startTestMesh()` (four services on their own ports, real Postgres and Redis), with:
 * - a pino logger at level `trace` writing every line to memory;
 * - an ingress that passes the client's address on in `x-forwarded-for`, `x-real-ip` and
 *   `forwarded`, and connects to the services from `clientAddress`;
 * - a relay in front of it, so every public client (EdgeVis Servers and customers) connects
 *   from `clientAddress`: `publicUrl` is the relay.
 */
export async function startObservedMesh(options: { clientAddress: string }): Promise<ObservedMesh> {
  const logLines: string[] = [];
  const logger = pino(
    { name: "cls-privacy", level: "trace", base: { service: "cls-privacy" }, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (line: string) => void logLines.push(line) },
  );
  let observed: ObservedMesh["observed"] | undefined;
  const mesh = await startTestMesh({
    logger,
    front: async (routes, tls) => {
      const ingress = await startObservingIngress({ tls, routes, upstreamLocalAddress: options.clientAddress });
      const relay = await startRelay({ targetUrl: ingress.url, fromAddress: options.clientAddress });
      observed = Object.assign(ingress.observed, { relayLocalAddresses: relay.outgoingLocalAddresses });
      return {
        url: relay.url,
        async close() {
          await relay.close();
          await ingress.close();
        },
      };
    },
  });
  return { ...mesh, logLines, redisPrefixes: [mesh.redisPrefix], clientAddress: options.clientAddress, observed: observed! };
}
