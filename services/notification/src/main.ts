import { runStandaloneService } from "@cls/runtime";
import { readNotificationConfig } from "./config.js";
import { NOTIFICATION_SCHEMA } from "./database.js";
import { notificationMigrations } from "./migrations/index.js";
import { createNotificationModule } from "./module.js";

const config = readNotificationConfig();
await runStandaloneService({
  name: "notification",
  config,
  schema: NOTIFICATION_SCHEMA,
  migrations: notificationMigrations,
  build: ({ infrastructure, logger, clock }) =>
    createNotificationModule({
      root: infrastructure.database.root,
      clock,
      logger,
      allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      deliveryIntervalMs: config.WEBHOOK_DELIVERY_INTERVAL_SECONDS * 1000,
    }),
});
