import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicKey, randomBytes } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { migrateAll, startMesh, type MeshLayout, type RunningMesh } from "@cls/all-in-one";
import { createRedisRevocationList } from "@cls/auth";
import { ManualClock, type Clock } from "@cls/clock";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { createRedisLockService } from "@cls/lock";
import { EncoderKind, NotificationAdminService, PoolAdminService, ServerIdentityAdminService, AllocationAdminService } from "@cls/proto";
import { createLogger, loadOrCreateSelfSignedTls, type Logger, type TlsMaterial } from "@cls/server";
import type { Redis } from "ioredis";
import { createVendorClient, type VendorClient } from "@cls/vendor-client";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { TEST_REDIS_URL } from "./env.js";
import { startIngress, type IngressRoute } from "./ingress.js";

/** The vendor staff member the test mesh trusts on its internal ports. */
export const STAFF_ACTOR = "staff:test@vendor.example";

/** The PEM public key of a PEM private key. */
export function publicPemOf(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: "spki", format: "pem" }).toString();
}

/** A running CLS on a fresh database and real Redis, with vendor tools and a way to make EdgeVis Servers. */
export interface TestMesh {
  mesh: RunningMesh;
  /** The one public HTTPS address EdgeVis Servers use. */
  publicUrl: string;
  database: TestDatabase;
  clock: ManualClock;
  tls: TlsMaterial;
  /** The trusted staff member's private key, for making more vendor clients. */
  staffKeyPem: string;
  /** The Redis connection, and the prefix of every key this mesh writes there. */
  redis: Redis;
  redisPrefix: string;
  vendor: {
    pools: VendorClient<typeof PoolAdminService>;
    identity: VendorClient<typeof ServerIdentityAdminService>;
    allocation: VendorClient<typeof AllocationAdminService>;
    notifications: VendorClient<typeof NotificationAdminService>;
  };
  /** A new EdgeVis Server client, pinned to this CLS's certificate and lease key. */
  edgeVisServer(): EdgeVisClient;
  close(): Promise<void>;
}

/** The one public HTTPS address in front of the services' public ports. */
export interface PublicFront {
  url: string;
  close(): Promise<void>;
}

export interface TestMeshOptions {
  layout?: MeshLayout;
  clock?: ManualClock;
  /** Where the services log; silent by default. */
  logger?: Logger;
  /** What stands in front of the public ports; by default the path-routing test ingress. */
  front?: (routes: IngressRoute[], tls: TlsMaterial) => Promise<PublicFront>;
}

export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const database = await createTestDatabase();
  await migrateAll(database.handle);
  const clock = options.clock ?? new ManualClock(new Date());
  const redisPrefix = `cls-test:${randomBytes(4).toString("hex")}:`;
  const locks = createRedisLockService({ url: TEST_REDIS_URL, prefix: redisPrefix });
  const tls = await loadOrCreateSelfSignedTls(mkdtempSync(join(tmpdir(), "cls-tls-")));
  const staffKeyPem = generateEd25519PrivateKeyPem();
  const mesh = await startMesh({
    database: database.handle,
    locks,
    revocations: createRedisRevocationList(locks.redis, { ttlMs: 3_600_000, prefix: `${redisPrefix}revoked:` }),
    redis: locks.redis,
    bruteForceKeyPrefix: `${redisPrefix}bruteforce:`,
    readiness: [],
    clock: clock as Clock,
    logger: options.logger ?? createLogger("cls-test", "silent"),
    tls,
    leaseSigningKeyPem: generateEd25519PrivateKeyPem(),
    tokenSigningKeyPem: generateEd25519PrivateKeyPem(),
    trustedCallers: [{ actor: STAFF_ACTOR, publicKeyPem: publicPemOf(staffKeyPem) }],
    layout: options.layout ?? "port-per-service",
    publicPort: 0,
    internalPort: 0,
    host: "127.0.0.1",
    reclaimIntervalMs: 3_600_000,
  });
  // One public host for EdgeVis Servers, routing by service, as the Kubernetes ingress does.
  const routes: IngressRoute[] = [
    { pathPrefix: "/cls.pool.v1.", target: mesh.urls.pool.publicUrl },
    { pathPrefix: "/cls.allocation.v1.", target: mesh.urls.allocation.publicUrl },
    { pathPrefix: "/cls.server_identity.v1.", target: mesh.urls["server-identity"].publicUrl },
    { pathPrefix: "/cls.notification.v1.", target: mesh.urls.notification.publicUrl },
  ];
  const ingress = await (options.front ?? ((r, t) => startIngress({ tls: t, routes: r })))(routes, tls);
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
    publicUrl: ingress.url,
    database,
    clock,
    tls,
    staffKeyPem,
    redis: locks.redis,
    redisPrefix,
    vendor,
    edgeVisServer() {
      return new EdgeVisClient({
        baseUrl: ingress.url,
        ca: tls.cert,
        tlsPins: [pin],
        leaseKeys: [{ keyId: mesh.leaseSigner.keyId, publicKey: mesh.leaseSigner.publicKey }],
      });
    },
    async close() {
      for (const client of Object.values(vendor)) client.close();
      await ingress.close();
      await mesh.close();
      await locks.close();
      await database.drop();
    },
  };
}

/** Vendor set-up most tests start from: an account, a licence type, a model and one pool. */
export async function seedAccount(
  t: TestMesh,
  options: { count?: number; expiresInMs?: number; licenceType?: string; model?: string } = {},
) {
  const licenceType = options.licenceType ?? "edgevis-camera";
  const model = options.model ?? "hd-ip200";
  const { account } = await t.vendor.pools.createAccount({ name: "Acme Security" });
  const types = await t.vendor.pools.listLicenceTypes({});
  if (!types.licenceTypes.some((type) => type.licenceType === licenceType)) {
    await t.vendor.pools.createLicenceType({ licenceType, description: "One camera on a v9 encoder" });
  }
  await t.vendor.pools.putEncoderModel({ model: { model, licenceType, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
  const { pool } = await t.vendor.pools.createPool({
    accountId: account!.accountId,
    name: "2026 purchase",
    expiresAt: timestampFromDate(new Date(t.clock.now().getTime() + (options.expiresInMs ?? 365 * 24 * 3600 * 1000))),
    counts: { [licenceType]: options.count ?? 2 },
  });
  return { accountId: account!.accountId, poolId: pool!.poolId, licenceType, model };
}

/** Enrolls a new EdgeVis Server into a pool and returns its client. */
export async function enrolledServer(t: TestMesh, accountId: string, poolId: string, name = "site-1"): Promise<EdgeVisClient> {
  const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId });
  const server = t.edgeVisServer();
  await server.enroll(enrollmentCode, name);
  return server;
}
