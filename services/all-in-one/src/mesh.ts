import { createPublicKey } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createAllocationModule, migrateAllocation } from "@cls/allocation";
import type { Redis } from "ioredis";
import {
  createInternalSigner,
  createInternalVerifier,
  createTokenIssuer,
  createTokenVerifier,
  type InternalSigner,
  type RevocationList,
  type TokenVerifier,
  type TrustedCaller,
} from "@cls/auth";
import type { Clock } from "@cls/clock";
import type { DatabaseHandle } from "@cls/db";
import { createLeaseSigner, generateEd25519PrivateKeyPem, type LeaseSigner } from "@cls/lease";
import type { LockService } from "@cls/lock";
import { createNotificationModule, migrateNotification } from "@cls/notification";
import { createPoolModule, migratePool } from "@cls/pool";
import { AllocationAdminService, NotificationAdminService, PoolAdminService } from "@cls/proto";
import { inProcessClient, internalGrpcClient, lateBoundClient, type ServiceModule } from "@cls/runtime";
import { createServerIdentityModule, migrateServerIdentity } from "@cls/server-identity";
import { authInterceptor, errorInterceptor, internalAuthInterceptor, startServers, type Logger, type ReadinessCheck, type RunningServers, type TlsMaterial } from "@cls/server";

export type MeshLayout = "single-port" | "port-per-service";

export interface MeshOptions {
  database: DatabaseHandle;
  locks: LockService;
  revocations: RevocationList;
  redis?: Redis;
  readiness: ReadinessCheck[];
  clock: Clock;
  logger: Logger;
  tls: TlsMaterial;
  leaseSigningKeyPem: string;
  tokenSigningKeyPem: string;
  tokenTtlMs?: number;
  /** Staff (and other services) allowed on the internal port, with their public keys. */
  trustedCallers: TrustedCaller[];
  /**
   * single-port: one public and one internal port for all services, in-memory calls between
   * them (the embedded default). port-per-service: each service on its own ports, calling
   * the others over gRPC, as in Kubernetes.
   */
  layout: MeshLayout;
  publicPort?: number;
  internalPort?: number;
  host?: string;
  reclaimIntervalMs?: number;
  /** Development only: let webhooks target http:, localhost and private networks. */
  webhookAllowPrivateTargets?: boolean;
  /** Redis key prefix of the brute-force counters (tests give each mesh its own). */
  bruteForceKeyPrefix?: string;
}

export interface RunningMesh {
  /** The public URL (single-port) or the allocation service's (port-per-service). */
  publicUrl: string;
  internalUrl: string;
  /** Each service's own URLs; all the same in single-port layout. */
  urls: Record<ServiceName, { publicUrl: string; internalUrl: string }>;
  leaseSigner: LeaseSigner;
  tokenVerifier: TokenVerifier;
  modules: { allocation: ReturnType<typeof createAllocationModule> } & Record<ServiceName, ServiceModule>;
  close(): Promise<void>;
}

export type ServiceName = "pool" | "allocation" | "server-identity" | "notification";

/** Applies every service's migrations to the shared database (embedded and test use). */
export async function migrateAll(database: DatabaseHandle): Promise<void> {
  for (const migrate of [migratePool, migrateAllocation, migrateServerIdentity, migrateNotification]) await migrate(database.root);
}

/** Starts the four CLS services in this process. */
export async function startMesh(options: MeshOptions): Promise<RunningMesh> {
  const { clock, logger, database } = options;
  const root = database.root;
  const leaseSigner = createLeaseSigner(options.leaseSigningKeyPem);
  const tokenIssuer = createTokenIssuer(options.tokenSigningKeyPem, { clock, ttlMs: options.tokenTtlMs ?? 5 * 60_000 });
  const tokenVerifier = createTokenVerifier([createPublicKey(tokenIssuer.publicKeyPem)], { clock });

  const notificationAdmin = lateBoundClient(NotificationAdminService);
  const allocationAdmin = lateBoundClient(AllocationAdminService);
  const poolAdmin = lateBoundClient(PoolAdminService);

  const notification = createNotificationModule({ root, clock, logger, allowPrivateTargets: options.webhookAllowPrivateTargets ?? false });
  const allocation = createAllocationModule({
    root,
    clock,
    logger,
    locks: options.locks,
    signer: leaseSigner,
    notificationAdmin: notificationAdmin.client,
    ...(options.reclaimIntervalMs ? { reclaimIntervalMs: options.reclaimIntervalMs } : {}),
  });
  const pool = createPoolModule({ root, clock, logger, allocationAdmin: allocationAdmin.client, notificationAdmin: notificationAdmin.client });
  const identity = createServerIdentityModule({
    root,
    clock,
    logger,
    tokenIssuer,
    revocations: options.revocations,
    ...(options.redis ? { redis: options.redis } : {}),
    ...(options.bruteForceKeyPrefix ? { bruteForceKeyPrefix: options.bruteForceKeyPrefix } : {}),
    allocationAdmin: allocationAdmin.client,
    poolAdmin: poolAdmin.client,
    notificationAdmin: notificationAdmin.client,
  });
  const modules = { pool, allocation, "server-identity": identity, notification };
  const all = Object.values(modules);

  // Between services on their own ports, each proves itself with a key of its own.
  const serviceSigners = new Map<ServiceName, InternalSigner>();
  const trusted = [...options.trustedCallers];
  if (options.layout === "port-per-service") {
    for (const name of ["pool", "allocation", "server-identity", "notification"] as const) {
      const pem = generateEd25519PrivateKeyPem();
      serviceSigners.set(name, createInternalSigner(`service:${name}`, pem));
      trusted.push({ actor: `service:${name}`, publicKeyPem: createPublicKey(pem).export({ type: "spki", format: "pem" }).toString() });
    }
  }
  const internalVerifier = createInternalVerifier(trusted);

  const serve = (list: ServiceModule[], ports: { publicPort: number; internalPort: number }) =>
    startServers({
      logger,
      public: {
        port: ports.publicPort,
        ...(options.host ? { host: options.host } : {}),
        tls: options.tls,
        services: list.flatMap((m) => m.publicServices),
        interceptors: [authInterceptor(tokenVerifier, new Set(list.flatMap((m) => m.anonymousMethods)), options.revocations, logger)],
      },
      internal: {
        port: ports.internalPort,
        ...(options.host ? { host: options.host } : {}),
        services: list.flatMap((m) => m.internalServices),
        interceptors: [internalAuthInterceptor(internalVerifier)],
      },
      readiness: options.readiness,
    });

  const running: RunningServers[] = [];
  let urls: RunningMesh["urls"];
  if (options.layout === "single-port") {
    const servers = await serve(all, { publicPort: options.publicPort ?? 8443, internalPort: options.internalPort ?? 9090 });
    running.push(servers);
    const inProcess = <S extends DescService>(service: S, module: ServiceModule): Client<S> => {
      const binding = module.internalServices.find((b) => b.service.typeName === service.typeName);
      if (!binding) throw new Error(`${module.name} does not serve ${service.typeName}`);
      return inProcessClient(service, binding, [errorInterceptor(logger) as Interceptor]);
    };
    notificationAdmin.bind(inProcess(NotificationAdminService, notification));
    allocationAdmin.bind(inProcess(AllocationAdminService, allocation));
    poolAdmin.bind(inProcess(PoolAdminService, pool));
    const both = { publicUrl: servers.publicUrl, internalUrl: servers.internalUrl };
    urls = { pool: both, allocation: both, "server-identity": both, notification: both };
  } else {
    const started = {} as Record<ServiceName, RunningServers>;
    for (const [name, module] of Object.entries(modules) as [ServiceName, ServiceModule][]) {
      started[name] = await serve([module], { publicPort: 0, internalPort: 0 });
      running.push(started[name]);
    }
    // Callers share one client per target here; each call is signed as the allocation, pool
    // or server-identity service in a real deployment, where each is its own process.
    notificationAdmin.bind(internalGrpcClient(NotificationAdminService, started.notification.internalUrl, serviceSigners.get("allocation")!));
    allocationAdmin.bind(internalGrpcClient(AllocationAdminService, started.allocation.internalUrl, serviceSigners.get("pool")!));
    poolAdmin.bind(internalGrpcClient(PoolAdminService, started.pool.internalUrl, serviceSigners.get("server-identity")!));
    urls = Object.fromEntries(
      Object.entries(started).map(([name, s]) => [name, { publicUrl: s.publicUrl, internalUrl: s.internalUrl }]),
    ) as RunningMesh["urls"];
  }

  return {
    publicUrl: urls.allocation.publicUrl,
    internalUrl: urls.allocation.internalUrl,
    urls,
    leaseSigner,
    tokenVerifier,
    modules,
    async close() {
      for (const servers of running) await servers.close(2_000);
      for (const module of all) await module.stop();
    },
  };
}
