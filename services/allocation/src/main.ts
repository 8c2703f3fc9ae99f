import { createLeaseSigner } from "@cls/lease";
import { NotificationAdminService } from "@cls/proto";
import { internalGrpcClient, readConfiguredFile, runStandaloneService } from "@cls/runtime";
import { readAllocationConfig } from "./config.js";
import { ALLOCATION_SCHEMA } from "./database.js";
import { allocationMigrations } from "./migrations/index.js";
import { createAllocationModule } from "./module.js";

const config = readAllocationConfig();
await runStandaloneService({
  name: "allocation",
  config,
  schema: ALLOCATION_SCHEMA,
  migrations: allocationMigrations,
  build: ({ infrastructure, logger, clock, serviceSigner }) =>
    createAllocationModule({
      root: infrastructure.database.root,
      clock,
      logger,
      locks: infrastructure.locks,
      signer: createLeaseSigner(readConfiguredFile("LEASE_SIGNING_KEY_FILE", config.LEASE_SIGNING_KEY_FILE)),
      notificationAdmin: internalGrpcClient(NotificationAdminService, config.NOTIFICATION_INTERNAL_URL, serviceSigner()),
      reclaimIntervalMs: config.RECLAIM_INTERVAL_SECONDS * 1000,
      crashAfterCommit: config.FAULT_CRASH_AFTER_COMMIT,
    }),
});
