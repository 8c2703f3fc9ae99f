import type { Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import { deliverToNotificationService, startOutboxRelay } from "@cls/outbox";
import { PoolAdminService, PoolService, type AllocationAdminService, type NotificationAdminService } from "@cls/proto";
import { startInterval, type ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { createAllocationSync } from "./allocation-sync.js";
import { sendExpiryNotices } from "./expiry-notices.js";
import { POOL_SCHEMA, type PoolDatabase } from "./database.js";
import { poolMigrations } from "./migrations/index.js";
import { createPoolAdminService } from "./pool-admin.service.js";
import { createPoolService } from "./pool.service.js";

export interface PoolModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
  allocationAdmin: Client<typeof AllocationAdminService>;
  notificationAdmin: Client<typeof NotificationAdminService>;
  /** How often scheduled jobs (expiry notices) run; tests call runJobs() instead. */
  jobIntervalMs?: number;
}

export function migratePool(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, POOL_SCHEMA, poolMigrations);
}

/** The pool service: accounts, pools, entitlements and the catalogue. */
export function createPoolModule(deps: PoolModuleDeps): ServiceModule {
  const db = forSchema<PoolDatabase>(deps.root, POOL_SCHEMA);
  const logger = deps.logger.child({ component: "pool" });
  const outbox = startOutboxRelay({ db, clock: deps.clock, logger, source: "pool", deliver: deliverToNotificationService(deps.notificationAdmin, "pool") });
  const sync = createAllocationSync({ db, allocation: deps.allocationAdmin, logger });
  const runJobs = async () => {
    if ((await sendExpiryNotices({ db, clock: deps.clock })) > 0) outbox.kick();
  };
  const jobs = startInterval(runJobs, deps.jobIntervalMs ?? 60_000, logger);
  return {
    name: "pool",
    publicServices: [bind(PoolService, createPoolService({ db, allocation: deps.allocationAdmin }))],
    internalServices: [bind(PoolAdminService, createPoolAdminService({ db, clock: deps.clock, logger, sync, outbox }))],
    anonymousMethods: [],
    runJobs,
    flushOutbox: async () => {
      await outbox.flush();
    },
    async stop() {
      jobs.stop();
      sync.stop();
      await outbox.stop();
    },
  };
}
