import { randomBytes } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { callerKey, type ServerCaller } from "@cls/auth";
import { DAY_MS, ManualClock } from "@cls/clock";
import { forSchema, newId, sql, type Kysely } from "@cls/db";
import { createLeaseSigner, generateEd25519PrivateKeyPem, verifyLease } from "@cls/lease";
import { createRedisLockService } from "@cls/lock";
import { AllocationAdminService, AllocationService, EncoderKind, NotificationAdminService, type Lease, type Notification, type SignedLease } from "@cls/proto";
import { createLogger, errorInterceptor, type ServiceBinding } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { TEST_REDIS_URL } from "../../../test/support/env.js";
import type { AllocationContext } from "./context.js";
import { ALLOCATION_SCHEMA, type AllocationDatabase, type PoolUsageTable } from "./database.js";
import { createAllocationModule, migrateAllocation } from "./module.js";

/** Catalogue entries every test context starts with (SPEC L1a). */
export const HARDWARE_MODEL = "hd-ip200";
export const CONTAINER_MODEL = "evvr-container";
export const CAMERA = "edgevis-camera";
export const EVVR_CAMERA = "evvr-camera";

export interface TestPool {
  poolId: string;
  accountId: string;
  expiresAt: Date;
}

/** An enrolled server bound to a pool, and the public API as that server sees it. */
export interface TestServer {
  caller: ServerCaller;
  api: Client<typeof AllocationService>;
  pool: TestPool;
}

export interface AllocationTestContext {
  database: TestDatabase;
  db: Kysely<AllocationDatabase>;
  clock: ManualClock;
  /** The module's use-case context, for driving jobs such as reclaim directly. */
  context: AllocationContext;
  /** The Redis lock service, and the prefix of every key it writes. */
  locks: ReturnType<typeof createRedisLockService>;
  lockPrefix: string;
  admin: Client<typeof AllocationAdminService>;
  /** Events the outbox relay delivered to the fake notification service. */
  ingested: Notification[];
  /** The public API with the given caller in the context, as the auth interceptor would set it. */
  publicApi(caller: ServerCaller | undefined): Client<typeof AllocationService>;
  /** ApplyEntitlement (version 1) for a new pool, of a new account unless one is given. */
  newPool(counts: Record<string, number>, options?: { accountId?: string; expiresInMs?: number }): Promise<TestPool>;
  /** BindServer for a new server in the pool. */
  newServer(pool: TestPool): Promise<TestServer>;
  /** The server's public API after registering an encoder (default: hardware on 9.2). */
  registered(server: TestServer, encoderId: string, options?: { model?: string; firmware?: string }): Promise<void>;
  usage(poolId: string, licenceType?: string): Promise<Pick<PoolUsageTable, "capacity" | "expires_at"> & { used: number }>;
  activeCount(poolId: string, licenceType?: string): Promise<number>;
  outboxEvents(accountId: string, type: string): Promise<Array<{ event_id: string; data: Record<string, unknown> }>>;
  /**
   * Holds a FOR UPDATE lock on a pool's usage rows until `release()`, so concurrent calls
   * queue behind it at a known point; `waiters(n)` resolves once n statements wait on a lock.
   */
  holdPoolUsage(poolId: string): Promise<{ release(): Promise<void> }>;
  waiters(count: number): Promise<void>;
  /** Verifies a lease against the module's lease key, as an EdgeVis Server does. */
  openLease(signed: SignedLease | undefined): Lease;
  close(): Promise<void>;
}

/** What a ConnectError from a rejected call carries. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof ConnectError)) throw new Error(`expected a ConnectError, got ${outcome === undefined ? "success" : String(outcome)}`);
  return outcome;
}

function routed(bindings: readonly ServiceBinding[], interceptors: Interceptor[]) {
  return createRouterTransport(
    (router) => {
      for (const binding of bindings) router.service(binding.service, binding.impl);
    },
    { router: { interceptors } },
  );
}

/**
 * A migrated allocation schema on real Postgres, real Redis locks, a ManualClock, and a fake
 * notification service; the module's APIs are called through Connect with the error interceptor.
 */
export async function createAllocationTestContext(options: { redisUrl?: string } = {}): Promise<AllocationTestContext> {
  const database = await createTestDatabase();
  await migrateAllocation(database.handle.root);
  const clock = new ManualClock(new Date("2030-01-01T00:00:00Z"));
  const logger = createLogger("allocation-test", "silent");
  const lockPrefix = `cls-test:${randomBytes(4).toString("hex")}:`;
  const locks = createRedisLockService({ url: options.redisUrl ?? TEST_REDIS_URL, prefix: lockPrefix });
  const signer = createLeaseSigner(generateEd25519PrivateKeyPem());
  const ingested: Notification[] = [];
  const notificationAdmin = createClient(
    NotificationAdminService,
    createRouterTransport((router) =>
      router.service(NotificationAdminService, {
        ingestEvents(req) {
          ingested.push(...req.events);
          return { accepted: req.events.length };
        },
      }),
    ),
  );
  const module = createAllocationModule({
    root: database.handle.root,
    clock,
    logger,
    locks,
    signer,
    notificationAdmin,
    reclaimIntervalMs: 24 * 3_600_000,
  });
  const db = forSchema<AllocationDatabase>(database.handle.root, ALLOCATION_SCHEMA);
  const admin = createClient(AllocationAdminService, routed(module.internalServices, [errorInterceptor(logger)]));
  const publicApi = (caller: ServerCaller | undefined) =>
    createClient(
      AllocationService,
      routed(module.publicServices, [
        errorInterceptor(logger),
        (next) => async (req) => {
          if (caller) req.contextValues.set(callerKey, caller);
          return next(req);
        },
      ]),
    );

  for (const model of [
    { model: HARDWARE_MODEL, licenceType: CAMERA, kind: EncoderKind.HARDWARE, minV9Version: "9.2" },
    { model: CONTAINER_MODEL, licenceType: EVVR_CAMERA, kind: EncoderKind.CONTAINER, minV9Version: "9.0" },
  ]) {
    await admin.applyEncoderModel({ model });
  }

  const t: AllocationTestContext = {
    database,
    db,
    clock,
    context: module.context,
    locks,
    lockPrefix,
    admin,
    ingested,
    publicApi,
    async newPool(counts, options = {}) {
      const pool = {
        poolId: newId("pool"),
        accountId: options.accountId ?? newId("acc"),
        expiresAt: new Date(clock.now().getTime() + (options.expiresInMs ?? 365 * DAY_MS)),
      };
      const { applied } = await admin.applyEntitlement({ ...pool, expiresAt: timestampFromDate(pool.expiresAt), counts, version: 1n });
      if (!applied) throw new Error("a new pool's first entitlement was not applied");
      return pool;
    },
    async newServer(pool) {
      const caller: ServerCaller = { kind: "server", serverId: newId("srv"), accountId: pool.accountId };
      await admin.bindServer({ serverId: caller.serverId, accountId: pool.accountId, poolId: pool.poolId });
      return { caller, api: publicApi(caller), pool };
    },
    async registered(server, encoderId, options = {}) {
      await server.api.registerEncoder({ encoderId, model: options.model ?? HARDWARE_MODEL, firmwareVersion: options.firmware ?? "9.2" });
    },
    async usage(poolId, licenceType = CAMERA) {
      return db
        .selectFrom("pool_usage")
        .select(["capacity", "used", "expires_at"])
        .where("pool_id", "=", poolId)
        .where("licence_type", "=", licenceType)
        .executeTakeFirstOrThrow();
    },
    async activeCount(poolId, licenceType = CAMERA) {
      const row = await db
        .selectFrom("allocations")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("pool_id", "=", poolId)
        .where("licence_type", "=", licenceType)
        .where("state", "=", "active")
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async outboxEvents(accountId, type) {
      const rows = await db.selectFrom("outbox").select(["event_id", "data"]).where("account_id", "=", accountId).where("type", "=", type).orderBy("occurred_at").execute();
      return rows.map((row) => ({ event_id: row.event_id, data: (typeof row.data === "string" ? JSON.parse(row.data) : row.data) as Record<string, unknown> }));
    },
    async holdPoolUsage(poolId) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const holder = db.transaction().execute(async (trx) => {
        await trx.selectFrom("pool_usage").selectAll().where("pool_id", "=", poolId).forUpdate().execute();
        holding();
        await released;
      });
      await Promise.race([held, holder]);
      return {
        async release() {
          release();
          await holder;
        },
      };
    },
    async waiters(count) {
      for (let attempt = 0; attempt < 1_000; attempt++) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(database.handle.root);
        if (rows[0]!.n >= count) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`never saw ${count} statements waiting on a lock`);
    },
    openLease(signed) {
      if (!signed) throw new ConnectError("no lease in the answer", Code.Internal);
      return verifyLease(signed, [{ keyId: signer.keyId, publicKey: signer.publicKey }]);
    },
    async close() {
      await module.stop();
      await locks.close();
      await database.drop();
    },
  };
  return t;
}
