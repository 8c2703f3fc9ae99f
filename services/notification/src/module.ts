import type { Kysely } from "kysely";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import { NotificationAdminService, NotificationService } from "@cls/proto";
import { startInterval, type ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { NOTIFICATION_SCHEMA, type NotificationDatabase } from "./database.js";
import { notificationMigrations } from "./migrations/index.js";
import { createNotificationAdminService } from "./notification-admin.service.js";
import { createNotificationService } from "./notification.service.js";
import { createWebhookDeliveryWorker } from "./webhook-delivery.js";

export interface NotificationModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
  /**
   * Development and tests only (`WEBHOOK_ALLOW_PRIVATE_TARGETS`): accept `http:` and private
   * host names such as `localhost` as webhook targets, and deliver to private addresses.
   */
  allowPrivateTargets?: boolean;
  /** How often the webhook delivery worker runs (default 5 s); tests call runJobs() instead. */
  deliveryIntervalMs?: number;
  /** Real-time limit of one webhook delivery attempt (default 5 s). */
  deliveryTimeoutMs?: number;
}

export function migrateNotification(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, NOTIFICATION_SCHEMA, notificationMigrations);
}

/**
 * The notification service: events from the other services' outboxes, listed per account and
 * delivered to the account's webhooks (SPEC L15).
 */
export function createNotificationModule(deps: NotificationModuleDeps): ServiceModule {
  const db = forSchema<NotificationDatabase>(deps.root, NOTIFICATION_SCHEMA);
  const logger = deps.logger.child({ component: "notification" });
  const allowPrivateTargets = deps.allowPrivateTargets ?? false;
  const worker = createWebhookDeliveryWorker({
    db,
    clock: deps.clock,
    logger: logger.child({ job: "webhook-delivery" }),
    allowPrivateTargets,
    ...(deps.deliveryTimeoutMs ? { timeoutMs: deps.deliveryTimeoutMs } : {}),
  });

  // The interval and runJobs() share one pass at a time in this process; replicas share through claims.
  let running: Promise<void> | undefined;
  let stopped = false;
  const runJobs = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    const previous = running ?? Promise.resolve();
    const pass: Promise<void> = previous
      .catch(() => {})
      .then(async () => {
        await worker.runOnce();
      })
      .finally(() => {
        if (running === pass) running = undefined;
      });
    running = pass;
    return pass;
  };
  const interval = startInterval(runJobs, deps.deliveryIntervalMs ?? 5_000, logger);

  return {
    name: "notification",
    publicServices: [bind(NotificationService, createNotificationService({ db, clock: deps.clock, allowPrivateTargets }))],
    internalServices: [bind(NotificationAdminService, createNotificationAdminService({ db, clock: deps.clock, logger }))],
    anonymousMethods: [],
    runJobs,
    async stop() {
      stopped = true;
      interval.stop();
      await running?.catch(() => {});
    },
  };
}
