import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { migrateAll, startMesh } from "@cls/all-in-one";
import { createRedisRevocationList } from "@cls/auth";
import { ManualClock, type Clock } from "@cls/clock";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { createRedisLockService } from "@cls/lock";
import { AllocationAdminService, NotificationAdminService, PoolAdminService, ServerIdentityAdminService } from "@cls/proto";
import { loadOrCreateSelfSignedTls } from "@cls/server";
import { createVendorClient } from "@cls/vendor-client";
import { createTestDatabase } from "../../support/database.js";
import { TEST_REDIS_URL } from "../../support/env.js";
import { publicPemOf, STAFF_ACTOR, type TestMesh } from "../../support/mesh.js";
import { startObservingIngress, type IngressObservations } from "./ingress.js";
import { startRelay } from "./relay.js";

/** A test mesh whose logs are kept and whose clients all come from one distinctive address. */
export interface ObservedMesh extends TestMesh {
  /** Every line every service logged, at level trace. */
  logLines: string[];
  /** The Redis key prefixes this mesh's locks and revocations use. */
  redisPrefixes: string[];
  redis: ReturnType<typeof createRedisLockService>["redis"];
  /** The address the clients connect from, and what the harness saw of it on the wire. */
  clientAddress: string;
  observed: IngressObservations & { relayLocalAddresses: string[] };
}

/**
 * Like `startTestMesh()` (four services on their own ports, real Postgres and Redis), with:
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
  const database = await createTestDatabase();
  await migrateAll(database.handle);
  const clock = new ManualClock(new Date());
  const tag = randomBytes(4).toString("hex");
  const lockPrefix = `cls-privacy:${tag}:`;
  const revokedPrefix = `cls-privacy:${tag}:revoked:`;
  const locks = createRedisLockService({ url: TEST_REDIS_URL, prefix: lockPrefix });
  const tls = await loadOrCreateSelfSignedTls(mkdtempSync(join(tmpdir(), "cls-tls-")));
  const staffKeyPem = generateEd25519PrivateKeyPem();
  const mesh = await startMesh({
    database: database.handle,
    locks,
    revocations: createRedisRevocationList(locks.redis, { ttlMs: 3_600_000, prefix: revokedPrefix }),
    redis: locks.redis,
    readiness: [],
    clock: clock as Clock,
    logger,
    tls,
    leaseSigningKeyPem: generateEd25519PrivateKeyPem(),
    tokenSigningKeyPem: generateEd25519PrivateKeyPem(),
    trustedCallers: [{ actor: STAFF_ACTOR, publicKeyPem: publicPemOf(staffKeyPem) }],
    layout: "port-per-service",
    publicPort: 0,
    internalPort: 0,
    host: "127.0.0.1",
    reclaimIntervalMs: 3_600_000,
  });
  const ingress = await startObservingIngress({
    tls,
    upstreamLocalAddress: options.clientAddress,
    routes: [
      { pathPrefix: "/cls.pool.v1.", target: mesh.urls.pool.publicUrl },
      { pathPrefix: "/cls.allocation.v1.", target: mesh.urls.allocation.publicUrl },
      { pathPrefix: "/cls.server_identity.v1.", target: mesh.urls["server-identity"].publicUrl },
      { pathPrefix: "/cls.notification.v1.", target: mesh.urls.notification.publicUrl },
    ],
  });
  const relay = await startRelay({ targetUrl: ingress.url, fromAddress: options.clientAddress });
  const actor = { actor: STAFF_ACTOR, privateKeyPem: staffKeyPem };
  const vendor = {
    pools: createVendorClient(PoolAdminService, mesh.urls.pool.internalUrl, actor),
    identity: createVendorClient(ServerIdentityAdminService, mesh.urls["server-identity"].internalUrl, actor),
    allocation: createVendorClient(AllocationAdminService, mesh.urls.allocation.internalUrl, actor),
    notifications: createVendorClient(NotificationAdminService, mesh.urls.notification.internalUrl, actor),
  };
  const pin = spkiPinOfPem(tls.cert);
  return {
    mesh,
    publicUrl: relay.url,
    database,
    clock,
    tls,
    staffKeyPem,
    vendor,
    logLines,
    redisPrefixes: [lockPrefix, revokedPrefix],
    redis: locks.redis,
    clientAddress: options.clientAddress,
    observed: Object.assign(ingress.observed, { relayLocalAddresses: relay.outgoingLocalAddresses }),
    edgeVisServer() {
      return new EdgeVisClient({
        baseUrl: relay.url,
        ca: tls.cert,
        tlsPins: [pin],
        leaseKeys: [{ keyId: mesh.leaseSigner.keyId, publicKey: mesh.leaseSigner.publicKey }],
      });
    },
    async close() {
      for (const client of Object.values(vendor)) client.close();
      await relay.close();
      await ingress.close();
      await mesh.close();
      await locks.close();
      await database.drop();
    },
  };
}
