import { randomBytes } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { callerKey, type ServerCaller } from "@cls/auth";
import { DAY_MS, ManualClock } from "@cls/clock";
import { forSchema, type Kysely } from "@cls/db";
import {
  AllocationAdminService,
  NotificationAdminService,
  PoolAdminService,
  PoolService,
  type ApplyEncoderModelRequest,
  type ApplyEntitlementRequest,
  type GetPoolUsageRequest,
  type Notification,
} from "@cls/proto";
import { createLogger, errorInterceptor, type Logger, type ServiceBinding } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { POOL_SCHEMA, type PoolDatabase } from "./database.js";
import { createPoolModule, migratePool } from "./module.js";
import { actorFromTestHeader } from "../../../test/support/actor-header.js";

/** What the fake allocation and notification services saw, and how they should misbehave. */
export interface PoolNeighbours {
  applyEntitlementCalls: ApplyEntitlementRequest[];
  applyEncoderModelCalls: ApplyEncoderModelRequest[];
  getPoolUsageCalls: GetPoolUsageRequest[];
  /** pool id → used per licence type, as the fake allocation service reports it. */
  used: Map<string, Record<string, number>>;
  ingested: Notification[];
  /** When set, ApplyEntitlement and ApplyEncoderModel throw it. */
  failAllocation?: Error | undefined;
  /** When set, GetPoolUsage throws it. */
  failUsage?: Error | undefined;
}

export interface PoolTestContext {
  database: TestDatabase;
  db: Kysely<PoolDatabase>;
  clock: ManualClock;
  logger: Logger;
  neighbours: PoolNeighbours;
  /** The fake AllocationAdminService client the module pushes to. */
  allocationAdmin: Client<typeof AllocationAdminService>;
  admin: Client<typeof PoolAdminService>;
  /** The public PoolService as the given server sees it (undefined: no caller). */
  publicApi(caller: ServerCaller | undefined): Client<typeof PoolService>;
  /** A unique licence type slug, created through the admin API. */
  newLicenceType(prefix?: string): Promise<string>;
  newAccount(): Promise<string>;
  createPool(accountId: string, counts: Record<string, number>, options?: { name?: string; expiresInDays?: number }): Promise<string>;
  count(table: keyof PoolDatabase): Promise<number>;
  close(): Promise<void>;
}

/** Request options naming a vendor staff member, as vendor tools send them (SPEC L16). */
export const staff = { headers: { "x-cls-actor": "staff:alice@example.com" } };

function routed(bindings: readonly ServiceBinding[], interceptors: Interceptor[]) {
  return createRouterTransport(
    (router) => {
      for (const binding of bindings) router.service(binding.service, binding.impl);
    },
    { router: { interceptors } },
  );
}

/** A migrated pool schema on real Postgres and the pool module over fake neighbours, called through Connect. */
export async function createPoolTestContext(): Promise<PoolTestContext> {
  const database = await createTestDatabase();
  await migratePool(database.handle.root);
  const clock = new ManualClock(new Date("2030-01-01T00:00:00Z"));
  const logger = createLogger("pool-test", "silent");
  const neighbours: PoolNeighbours = { applyEntitlementCalls: [], applyEncoderModelCalls: [], getPoolUsageCalls: [], used: new Map(), ingested: [] };

  const allocationAdmin = createClient(
    AllocationAdminService,
    createRouterTransport((router) =>
      router.service(AllocationAdminService, {
        applyEntitlement(req) {
          if (neighbours.failAllocation) throw neighbours.failAllocation;
          neighbours.applyEntitlementCalls.push(req);
          return { applied: true };
        },
        applyEncoderModel(req) {
          if (neighbours.failAllocation) throw neighbours.failAllocation;
          neighbours.applyEncoderModelCalls.push(req);
          return {};
        },
        getPoolUsage(req) {
          if (neighbours.failUsage) throw neighbours.failUsage;
          neighbours.getPoolUsageCalls.push(req);
          return { usages: req.poolIds.map((poolId) => ({ poolId, used: neighbours.used.get(poolId) ?? {} })) };
        },
      }),
    ),
  );
  const notificationAdmin = createClient(
    NotificationAdminService,
    createRouterTransport((router) =>
      router.service(NotificationAdminService, {
        ingestEvents(req) {
          neighbours.ingested.push(...req.events);
          return { accepted: req.events.length };
        },
      }),
    ),
  );

  // Scheduled jobs (expiry notices) are driven by tests, never by a timer mid-test.
  const module = createPoolModule({ root: database.handle.root, clock, logger, allocationAdmin, notificationAdmin, jobIntervalMs: 24 * 3_600_000 });
  const db = forSchema<PoolDatabase>(database.handle.root, POOL_SCHEMA);
  const admin = createClient(PoolAdminService, routed(module.internalServices, [errorInterceptor(logger), actorFromTestHeader()]));
  const publicApi = (caller: ServerCaller | undefined) =>
    createClient(
      PoolService,
      routed(module.publicServices, [
        errorInterceptor(logger),
        (next) => async (req) => {
          if (caller) req.contextValues.set(callerKey, caller);
          return next(req);
        },
      ]),
    );

  return {
    database,
    db,
    clock,
    logger,
    neighbours,
    allocationAdmin,
    admin,
    publicApi,
    async newLicenceType(prefix = "type") {
      const licenceType = `${prefix}-${randomBytes(4).toString("hex")}`;
      await admin.createLicenceType({ licenceType, description: "test licence type" }, staff);
      return licenceType;
    },
    async newAccount() {
      const { account } = await admin.createAccount({ name: "Acme Security" }, staff);
      return account!.accountId;
    },
    async createPool(accountId, counts, options = {}) {
      const { pool } = await admin.createPool(
        {
          accountId,
          name: options.name ?? "2030 purchase",
          expiresAt: timestampFromDate(new Date(clock.now().getTime() + (options.expiresInDays ?? 365) * DAY_MS)),
          counts,
        },
        staff,
      );
      return pool!.poolId;
    },
    async count(table) {
      const row = await db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async close() {
      await module.stop();
      await database.drop();
    },
  };
}
