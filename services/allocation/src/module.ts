import type { Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import type { LeaseSigner } from "@cls/lease";
import type { LockService } from "@cls/lock";
import { deliverToNotificationService, startOutboxRelay } from "@cls/outbox";
import { AllocationAdminService, AllocationService, type NotificationAdminService } from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { createAcquireContextLoader } from "./acquire-context.loader.js";
import { loadAcquireContexts } from "./acquire-context.repository.js";
import { createAllocationAdminService } from "./allocation-admin.service.js";
import { createAllocationService } from "./allocation.service.js";
import type { AllocationContext } from "./context.js";
import { ALLOCATION_SCHEMA, type AllocationDatabase } from "./database.js";
import { runAllocationJobs, startAllocationJobs } from "./jobs.js";
import { observeAllocationGauges } from "./metrics.js";
import { allocationMigrations } from "./migrations/index.js";
import { createPoolAllocator } from "./pool-allocator.js";

export interface AllocationModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
  locks: LockService;
  signer: LeaseSigner;
  notificationAdmin: Client<typeof NotificationAdminService>;
  /** Fault suite only: chance of a SIGKILL between a grant's commit and its reply. */
  crashAfterCommit?: number;
  /** How often the scheduled jobs (reclaim, silent servers) run; tests call runJobs() instead. */
  reclaimIntervalMs?: number;
}

export function migrateAllocation(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, ALLOCATION_SCHEMA, allocationMigrations);
}

/** The allocation module with its context exposed, for tests that drive jobs directly. */
export function createAllocationModule(deps: AllocationModuleDeps): ServiceModule & { context: AllocationContext } {
  const db = forSchema<AllocationDatabase>(deps.root, ALLOCATION_SCHEMA);
  const logger = deps.logger.child({ component: "allocation" });
  const outbox = startOutboxRelay({ db, clock: deps.clock, logger, source: "allocation", deliver: deliverToNotificationService(deps.notificationAdmin, "allocation") });
  const context: AllocationContext = {
    db,
    clock: deps.clock,
    logger,
    signer: deps.signer,
    allocator: createPoolAllocator({ db, locks: deps.locks, logger }),
    acquireContexts: createAcquireContextLoader((keys) => loadAcquireContexts(db, keys)),
    outbox,
    crashAfterCommit: deps.crashAfterCommit ?? 0,
  };
  const jobs = startAllocationJobs(context, deps.reclaimIntervalMs);
  const stopGauges = observeAllocationGauges(db);
  return {
    name: "allocation",
    context,
    publicServices: [bind(AllocationService, createAllocationService(context))],
    internalServices: [bind(AllocationAdminService, createAllocationAdminService(context))],
    anonymousMethods: [`${AllocationService.typeName}/GetLeaseKey`],
    runJobs: () => runAllocationJobs(context),
    flushOutbox: async () => {
      await outbox.flush();
    },
    async stop() {
      jobs.stop();
      stopGauges();
      await outbox.stop();
    },
  };
}
