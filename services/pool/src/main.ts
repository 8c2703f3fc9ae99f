import { AllocationAdminService, NotificationAdminService } from "@cls/proto";
import { internalGrpcClient, runStandaloneService } from "@cls/runtime";
import { readPoolConfig } from "./config.js";
import { POOL_SCHEMA } from "./database.js";
import { poolMigrations } from "./migrations/index.js";
import { createPoolModule } from "./module.js";

const config = readPoolConfig();
await runStandaloneService({
  name: "pool",
  config,
  schema: POOL_SCHEMA,
  migrations: poolMigrations,
  build: ({ infrastructure, logger, clock, serviceSigner }) =>
    createPoolModule({
      root: infrastructure.database.root,
      clock,
      logger,
      allocationAdmin: internalGrpcClient(AllocationAdminService, config.ALLOCATION_INTERNAL_URL, serviceSigner()),
      notificationAdmin: internalGrpcClient(NotificationAdminService, config.NOTIFICATION_INTERNAL_URL, serviceSigner()),
    }),
});
